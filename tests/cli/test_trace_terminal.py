"""`tierwise trace` and `tierwise report` print ledger text inert: a hostile client (feature tag)
and a hostile upstream (error message) plant rich markup, OSC 8 hyperlinks, screen-clearing CSI,
C1 controls and bidi overrides; the CLI must neither crash, nor style, link or move anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Fail, OpenAIDouble
from tests.harness import GatewayServer, make_config
from tierwise.cli import main as cli

HOSTILE = ("[/] [bold red]boom[/bold red] [link=http://evil.example]click[/link] "
           "\x1b]8;;http://evil.example\x07osc-link\x1b]8;;\x07 \x1b[2J\x1b[H cleared \x9b31m c1 "
           "\u202egnp.exe\u202c \r\x08 end")
# Nothing a terminal acts on may reach it: ESC, BEL, CSI (C1), bidi overrides, CR, backspace.
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u202c", "\r", "\x08")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    up = OpenAIDouble().start()
    data = {
        "ledger": {"path": "ledger.db"},
        "providers": {"oai": {"kind": "openai", "base_url": up.url + "/v1"}},
        "models": {"local": {"provider": "oai", "model": "qwen-local"}},
        "routes": {"main": {"policy": "fallback", "targets": ["local"], "retries": 0}},
    }
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump(data))
    g = GatewayServer(make_config(data, tmp_path)).start()
    try:
        yield {"g": g, "up": up, "cfg": str(cfg)}
    finally:
        g.stop()
        up.stop()


def _hostile_request(served: dict[str, Any]) -> str:
    served["up"].script(Fail(500, HOSTILE))
    r = httpx.post(served["g"].url + "/v1/chat/completions", timeout=20, json={
        "model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": HOSTILE}],
        "metadata": {"tierwise_feature": HOSTILE}})
    assert r.status_code >= 500
    served["g"].flush()
    return str(r.headers["x-tierwise-request-id"])


def test_trace_prints_hostile_ledger_text_inert(served: dict[str, Any]) -> None:
    rid = _hostile_request(served)
    out = CliRunner().invoke(cli, ["trace", "-c", served["cfg"], rid])
    assert out.exit_code == 0, out.output  # a stray `[/]` used to crash it
    for bad in FORBIDDEN:
        assert bad not in out.output, f"{bad!r} reached the terminal"
    # The markup is shown as the text it is, not applied (rich would swallow the tags).
    assert "[/]" in out.output and "[link=http://evil.example]" in out.output
    assert "\\x1b]8;;http://evil.example\\x07" in out.output  # visible, as an escape
    assert "\\u202e" in out.output


def test_trace_json_is_inert_and_still_json(served: dict[str, Any]) -> None:
    rid = _hostile_request(served)
    out = CliRunner().invoke(cli, ["trace", "-c", served["cfg"], "--json", rid])
    assert out.exit_code == 0, out.output
    for bad in FORBIDDEN:
        assert bad not in out.output
    rec = orjson.loads(out.output)
    assert "\u202e" in rec["error_message"]  # the JSON still carries the exact text, escaped


def test_report_by_feature_prints_hostile_tag_inert(served: dict[str, Any]) -> None:
    _hostile_request(served)
    for args in (["report", "-c", served["cfg"], "--by", "feature"],
                 ["report", "-c", served["cfg"], "--by", "feature", "--json"]):
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 0, out.output
        for bad in FORBIDDEN:
            assert bad not in out.output, f"{bad!r} reached the terminal"
