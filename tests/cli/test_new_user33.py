"""A Claude Code user's first `tierwise claude` (session 33, newuser33): a `--haiku-model`/`--subagent-model`
that names no route or model of the config is said, with the name it is close to, before Claude Code starts
(before: the gateway sent those requests to its default route and nothing on the screen said so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tierwise.cli import main as cli


def _config(tmp_path: Path, default_route: str | None) -> str:
    cfg: dict[str, Any] = {
        "ledger": {"enabled": False},
        "providers": {"llamacpp": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
        "models": {"local": {"provider": "llamacpp", "model": "tiny"}},
        "routes": {"main": ["local"], "local-first": ["local"], "claude-*": ["local"]},
    }
    if default_route:
        cfg["server"] = {"default_route": default_route}
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _run(tmp_path: Path, monkeypatch: Any, config: str, *options: str) -> Any:
    monkeypatch.setenv("PATH", str(tmp_path))  # no claude: past the checks it would say it is not installed
    monkeypatch.setattr("tierwise.commands.claude.CHECKOUT_ROOT", tmp_path / "no-checkout")  # nor the checkout's
    from tests.harness import GatewayServer, make_config

    g = GatewayServer(make_config(yaml.safe_load(Path(config).read_text()), tmp_path)).start()
    try:
        return CliRunner().invoke(cli, ["claude", "-c", config, "--url", g.url, *options, "-p", "hi"])
    finally:
        g.stop()


def test_a_misspelt_haiku_model_is_named_with_where_its_requests_go(tmp_path: Path, monkeypatch: Any) -> None:
    res = _run(tmp_path, monkeypatch, _config(tmp_path, "main"), "--haiku-model", "locl",
               "--subagent-model", "local-frist")
    assert ("tierwise: warning: --haiku-model 'locl' is not a route or model of the config: its requests go to the "
            "default route `main`; did you mean `local`? known: claude-*, local, local-first, main") in res.output
    assert "--subagent-model 'local-frist' is not a route or model of the config: its requests go to the default " \
           "route `main`; did you mean `local-first`?" in res.output


def test_without_a_default_route_the_warning_says_404(tmp_path: Path, monkeypatch: Any) -> None:
    res = _run(tmp_path, monkeypatch, _config(tmp_path, None), "--subagent-model", "locl")
    assert "--subagent-model 'locl' is not a route or model of the config: the gateway answers its requests 404" \
        in res.output


def test_routes_models_and_pattern_routes_pass_without_a_word(tmp_path: Path, monkeypatch: Any) -> None:
    res = _run(tmp_path, monkeypatch, _config(tmp_path, "main"), "--haiku-model", "claude-haiku-4-5",
               "--subagent-model", "local-first")
    assert "warning: --" not in res.output
    res = _run(tmp_path, monkeypatch, _config(tmp_path, "main"), "--haiku-model", "local")
    assert "warning: --" not in res.output
