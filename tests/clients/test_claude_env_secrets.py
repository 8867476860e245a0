"""`tierwise claude` hands Claude Code none of the secrets the gateway holds: Claude Code's shell tool runs the
commands its model chooses (`env`, `echo $OPENAI_API_KEY`) and what they print goes into the conversation, to the
upstream and the ledger. Before session 38 it got the whole environment: provider keys, admin keys, Redis URLs with
their passwords. A fake `claude` on PATH writes the environment it was started with."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.doubles import AnthropicDouble, Reply
from tests.harness import GatewayServer, make_config

SECRETS = {
    "TW38_OPENAI_KEY": "sk-proj-Tw38ProviderKey0123456789",  # a provider's api_key_env
    "TW38_ADMIN": "adm-Tw38AdminKey987654",  # server.admin_keys_env
    "TW38_CLIENT_B": "tw38-other-client-key-555",  # another client key of the gateway
    "TW38_REDIS_URL": "redis://:Tw38RedisPass42@127.0.0.1:6379/9",  # the cache's Redis, password inside
}
HANDED = ("TW38_CLIENT_A", "tw38-client-key-a-0123456")  # the client key Claude Code is given


def _as_a_user() -> Any:
    """A preexec_fn running `tierwise claude` as a user that is not root (where the test is root: root reads every
    process's /proc), the interpreter's and the source's folders staged for it as the sandbox stages them."""
    if os.geteuid() != 0:
        return None
    from tierwise.sandbox import identity

    user = identity.User(61000, 61000)
    src = str(Path(__file__).resolve().parents[2] / "src")
    reach = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), src]
    prepared = identity.switcher(user, identity.plan(reach, user))
    return lambda: identity.switch(prepared)


def test_claude_code_gets_none_of_the_gateways_secrets() -> None:
    with tempfile.TemporaryDirectory() as folder:  # (pytest's tmp_path is in a folder only root may enter)
        os.chmod(folder, 0o777)
        _gets_none(Path(folder))


def _gets_none(tmp_path: Path) -> None:
    up = AnthropicDouble().start()
    up.default = Reply(text="ok")
    cfg = {
        "ledger": {"enabled": False},
        "server": {"api_keys_env": [HANDED[0], "TW38_CLIENT_B"], "admin_keys_env": ["TW38_ADMIN"],
                   "default_route": "m"},
        "providers": {"a": {"kind": "anthropic", "base_url": up.url},
                      "o": {"kind": "openai", "base_url": up.url + "/v1", "api_key_env": "TW38_OPENAI_KEY"}},
        "models": {"m": {"provider": "a", "model": "claude-upstream"}},
        "cache": {"enabled": True, "backend": "redis", "redis_url": "${TW38_REDIS_URL}"},
    }
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dump = tmp_path / "claude-env"
    ancestors = tmp_path / "ancestors-environ"
    # ... and what its shell tool reads of its ancestors (review38c: `tierwise claude` waited as Claude Code's parent,
    # its own /proc/<pid>/environ holding every key, readable by its user: `cat /proc/$PPID/environ`)
    (bin_dir / "claude").write_text(f"#!/bin/sh\nenv > {dump}\np=$PPID\nwhile [ \"$p\" -gt 1 ]; do\n"
                                    f"  tr '\\0' '\\n' < /proc/$p/environ >> {ancestors} 2>/dev/null\n"
                                    "  p=$(awk '{print $4}' /proc/$p/stat)\ndone\n")
    (bin_dir / "claude").chmod(0o755)
    os.chmod(tmp_path / "tierwise.yaml", 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "OPENAI_", "TIERWISE_"))}
    env.update(SECRETS, **{HANDED[0]: HANDED[1]}, GITHUB_TOKEN="ghp_usersOwnTokenForTheirTools0123",
               PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    old = {k: os.environ.get(k) for k in (*SECRETS, HANDED[0])}
    os.environ.update(SECRETS, **{HANDED[0]: HANDED[1]})  # for the in-process gateway
    try:
        g = GatewayServer(make_config(yaml.safe_load((tmp_path / "tierwise.yaml").read_text()), tmp_path)).start()
        try:
            proc = subprocess.run([sys.executable, "-m", "tierwise.cli", "claude", "-c", str(tmp_path / "tierwise.yaml"),
                                   "--url", g.url], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                                  preexec_fn=_as_a_user())
        finally:
            g.stop()
    finally:
        up.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = dump.read_text()
    leaked = [name for name, value in SECRETS.items() if value in seen]
    assert not leaked, leaked
    above = ancestors.read_text() if ancestors.exists() else ""
    assert not [name for name, value in SECRETS.items() if value in above]
    assert "Tw38RedisPass42" not in seen
    got = dict(line.split("=", 1) for line in seen.splitlines() if "=" in line)
    assert got["ANTHROPIC_AUTH_TOKEN"] == HANDED[1]  # the gateway's client key (newuser38b: as a bearer token)
    assert "ANTHROPIC_API_KEY" not in got
    assert got["GITHUB_TOKEN"].startswith("ghp_")  # the user's own tools' variables stay
