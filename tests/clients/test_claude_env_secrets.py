"""`tierwise claude` hands Claude Code none of the secrets the gateway holds: Claude Code's shell tool runs the
commands its model chooses (`env`, `echo $OPENAI_API_KEY`) and what they print goes into the conversation, to the
upstream and the ledger. Before session 38 it got the whole environment: provider keys, admin keys, Redis URLs with
their passwords. A fake `claude` on PATH writes the environment it was started with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_claude_code_gets_none_of_the_gateways_secrets(tmp_path: Path) -> None:
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
    (bin_dir / "claude").write_text(f"#!/bin/sh\nenv > {dump}\n")
    (bin_dir / "claude").chmod(0o755)
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
                                   "--url", g.url], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
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
    assert "Tw38RedisPass42" not in seen
    got = dict(line.split("=", 1) for line in seen.splitlines() if "=" in line)
    assert got["ANTHROPIC_AUTH_TOKEN"] == HANDED[1]  # the gateway's client key (newuser38b: as a bearer token)
    assert "ANTHROPIC_API_KEY" not in got
    assert got["GITHUB_TOKEN"].startswith("ghp_")  # the user's own tools' variables stay
