"""The CLI's calls to a running gateway carry a key: an admin key (`tierwise approvals`, `budgets`, `cache`), a
viewer or admin key (`tierwise top`), a client key (`tierwise claude`'s check before it starts Claude Code).
urllib follows a redirect and re-sends every header the request was made with, `Authorization` included, to
whatever host the `Location` names (another host, or http after https): a front door that redirects (a login
page, an http -> https hop to another name) or anything answering at `--url` got the key. Real HTTP on loopback:
the first host answers with a redirect to a second, which keeps the headers it was sent.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from tests.security.test_upstream_redirects import _Host
from tierwise.cli import main as cli

ADMIN = "tw-cli-admin-" + secrets.token_hex(16)
CLIENT = "tw-cli-client-" + secrets.token_hex(16)


def _config(tmp_path: Path) -> str:
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"api_keys_env": ["TW_CLI_CLIENT"], "admin_keys_env": ["TW_CLI_ADMIN"]},
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}},
        "models": {"m": {"provider": "p", "model": "m"}},
        "routes": {"main": "m"},
        "budgets": {"limits": [{"name": "all", "usd": 5, "window": "day"}]},
    }))
    return str(path)


COMMANDS = {
    "approvals": lambda cfg, url: ["approvals", "list", "-c", cfg, "--url", url],
    "budgets": lambda cfg, url: ["budgets", "-c", cfg, "--url", url],
    "cache": lambda cfg, url: ["cache", "stats", "-c", cfg, "--url", url],
    "top": lambda cfg, url: ["top", "--once", "-c", cfg, "--url", url],
}


@pytest.fixture
def hosts() -> Any:
    thief = _Host(200)
    yield thief
    thief.stop()


@pytest.mark.parametrize("status", [307, 302])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_redirect_does_not_take_the_admin_key_to_another_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 hosts: _Host, name: str, status: int) -> None:
    monkeypatch.setenv("TW_CLI_ADMIN", ADMIN)
    monkeypatch.setenv("TW_CLI_CLIENT", CLIENT)
    monkeypatch.delenv("TIERWISE_KEY", raising=False)
    front = _Host(status, hosts.url + "/elsewhere")
    try:
        out = CliRunner().invoke(cli, COMMANDS[name](_config(tmp_path), front.url))
    finally:
        front.stop()
    assert front.seen and ADMIN in repr(front.seen), "the command never asked the address it was given"
    stolen = [h for h in hosts.seen if ADMIN in repr(h) or CLIENT in repr(h)]
    assert not stolen, f"`tierwise {name}` sent its key to the host a redirect named: {stolen}"
    assert out.exit_code != 0 and "redirect" in out.output, out.output  # says why, in one line
    assert "Traceback" not in out.output and ADMIN not in out.output


@pytest.mark.parametrize("status", [307, 302])
def test_claudes_check_does_not_take_the_client_key_to_another_host(hosts: _Host, status: int) -> None:
    from tierwise.commands.claude import _check_gateway, _refuses

    front = _Host(status, hosts.url + "/elsewhere")
    try:
        try:
            _check_gateway(front.url, "tierwise.yaml", CLIENT)
        except click.ClickException:
            pass
        _refuses(front.url, {"authorization": f"Bearer {CLIENT}"})
    finally:
        front.stop()
    assert len(front.seen) >= 2 and CLIENT in repr(front.seen)
    stolen = [h for h in hosts.seen if CLIENT in repr(h)]
    assert not stolen, f"`tierwise claude` sent the client key to the host a redirect named: {stolen}"
