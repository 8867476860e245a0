"""Issue 16, point 5: figures that tell the truth, and requests a person can find.

A remote model with no known price is unknown cost (never $0, never savings) in the ledger, in
`tierwise report` and in `doctor`; the ledger keeps the model name the client asked for and its
cached input tokens, and `trace` shows them; `tierwise requests` lists recent requests with
filters and `trace --last` opens the newest; streamed answers carry the request id, the route and
the steps known at the first byte; `report` counts ensemble runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import AnthropicDouble, OpenAIDouble, Raw, Reply
from tests.harness import GatewayServer, make_config
from tierwise.cli import main as cli
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger

UNPRICED_ID = "acme-unlisted-model-7"  # in no price list: genai-prices does not know it


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A gateway whose `mystery` model is remote and unpriced, `local` is local (free), `frontier`
    is remote with a config price and is the reference for savings."""
    oai_up = OpenAIDouble().start()
    ant_up = AnthropicDouble().start()
    data = {
        "ledger": {"path": "ledger.db"},
        "reference_model": "frontier",
        "server": {"default_route": "main"},
        "providers": {
            "hosted": {"kind": "openai", "base_url": oai_up.url + "/v1", "locality": "remote"},
            "box": {"kind": "openai", "base_url": oai_up.url + "/v1", "locality": "local"},
            "cloud": {"kind": "anthropic", "base_url": ant_up.url, "locality": "remote"},
        },
        "models": {
            "mystery": {"provider": "hosted", "model": UNPRICED_ID},
            "local": {"provider": "box", "model": "qwen-local"},
            "frontier": {"provider": "cloud", "model": "big-model", "price": {"input": 3.0, "output": 15.0}},
        },
        "routes": {
            "main": {"policy": "fallback", "targets": ["mystery"], "retries": 0},
            "cheap": {"policy": "fallback", "targets": ["local"], "retries": 0},
            "claude": {"policy": "fallback", "targets": ["frontier"], "retries": 0},
        },
    }
    cfg_path = tmp_path / "tierwise.yaml"
    cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
    g = GatewayServer(make_config(data, tmp_path)).start()
    try:
        yield {"g": g, "oai": oai_up, "ant": ant_up, "cfg": str(cfg_path), "dir": tmp_path}
    finally:
        g.stop()
        oai_up.stop()
        ant_up.stop()


def _oai(g: GatewayServer) -> openai.OpenAI:
    return g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0))


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_unpriced_remote_model_is_unknown_cost_never_savings(setup: dict[str, Any]) -> None:
    g = setup["g"]
    setup["oai"].script(Reply("hello", usage=(1000, 200)))
    _oai(g).chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    g.flush()
    res = _run("report", "-c", setup["cfg"], "--json")
    assert res.exit_code == 0, res.output
    rep = orjson.loads(res.output)
    total = rep["total"]
    assert total["requests"] == 1
    assert total["unknown_cost"] == 1 and rep["unknown_cost"]["models"] == ["mystery"]
    # Left out of every money figure: no cost, no reference cost, nothing saved.
    assert total["cost_usd"] == 0 and total["reference_cost_usd"] == 0 and total["savings_usd"] == 0
    assert total["savings_pct"] is None
    text = _run("report", "-c", setup["cfg"]).output
    assert "100.0" not in text
    assert "unknown cost" in text and "mystery" in text


def test_unknown_cost_does_not_hide_among_known_costs(setup: dict[str, Any]) -> None:
    g = setup["g"]
    setup["oai"].script(Reply("a", usage=(1000, 200)), Reply("b", usage=(1000, 200)))
    setup["ant"].script(Reply("c", usage=(1000, 200)))
    client = _oai(g)
    for model in ("main", "cheap", "claude"):
        client.chat.completions.create(model=model, max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    g.flush()
    rep = orjson.loads(_run("report", "-c", setup["cfg"], "--json").output)
    rows = {r["key"]: r for r in rep["rows"]}
    assert rows["main"]["unknown_cost"] == 1 and rows["main"]["savings_usd"] == 0
    # The local answer saved what the frontier model would have cost; the frontier saved nothing.
    frontier_cost = (1000 * 3.0 + 200 * 15.0) / 1e6
    assert rows["cheap"]["savings_usd"] == pytest.approx(frontier_cost)
    assert rows["claude"]["savings_usd"] == pytest.approx(0)
    assert rep["total"]["unknown_cost"] == 1
    assert rep["total"]["savings_pct"] == pytest.approx(50.0)  # two priced requests, one saved


def test_doctor_warns_about_remote_models_without_a_price(setup: dict[str, Any]) -> None:
    out = _run("doctor", "-c", setup["cfg"]).output
    lines = [ln for ln in out.splitlines() if "no known price" in ln]
    assert len(lines) == 1 and "mystery" in lines[0] and UNPRICED_ID in lines[0]
    assert "price" in lines[0]  # says how to fix it


def test_ledger_keeps_requested_model_and_cached_tokens_and_trace_shows_them(setup: dict[str, Any]) -> None:
    g = setup["g"]
    # An OpenAI-format server's prompt_tokens include the cached ones (llama.cpp: 519 = 518 cached + 1).
    setup["oai"].script(Reply("ok", usage=(519, 8), cache_read_tokens=518))
    r = _oai(g).chat.completions.with_raw_response.create(
        model="some-name-no-route-has", max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    rec = Ledger.open(str(setup["dir"] / "ledger.db")).get(rid)
    assert rec is not None
    assert rec.requested_model == "some-name-no-route-has" and rec.route == "main"
    assert (rec.input_tokens, rec.cache_read_tokens, rec.output_tokens) == (1, 518, 8)
    out = _run("trace", "-c", setup["cfg"], rid).output
    assert "asked for: some-name-no-route-has" in out
    assert "519 in (518 cached) / 8 out" in out
    assert "519 (518 cached)/8" in out  # the step's tokens, not "1/8"


def test_report_counts_cached_input_tokens_like_trace(setup: dict[str, Any]) -> None:
    """`report`'s tokens in is every prompt token, as `trace` and `requests` show it: a prompt the
    server mostly had in its cache (llama.cpp: 519 = 518 cached + 1) is 519, not 1."""
    g = setup["g"]
    setup["oai"].script(Reply("ok", usage=(519, 8), cache_read_tokens=518))
    setup["ant"].script(Reply("ok", usage=(12, 7), cache_read_tokens=900, cache_write_tokens=300))
    _oai(g).chat.completions.create(model="cheap", max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    _oai(g).chat.completions.create(model="claude", max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    g.flush()
    rows = {r["key"]: r for r in orjson.loads(_run("report", "-c", setup["cfg"], "--json").output)["rows"]}
    assert rows["cheap"]["input_tokens"] == 519
    assert rows["claude"]["input_tokens"] == 12 + 900 + 300


def test_anthropic_cache_reads_and_writes_are_kept_and_shown(setup: dict[str, Any]) -> None:
    g = setup["g"]
    setup["ant"].script(Reply("ok", usage=(12, 7), cache_read_tokens=900, cache_write_tokens=300))
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0))
    r = client.messages.with_raw_response.create(model="claude", max_tokens=500,
                                                  messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    rec = Ledger.open(str(setup["dir"] / "ledger.db")).get(rid)
    assert rec is not None and (rec.input_tokens, rec.cache_read_tokens, rec.cache_write_tokens) == (12, 900, 300)
    out = _run("trace", "-c", setup["cfg"], rid).output
    assert "1212 in (900 cached, 300 written to cache) / 7 out" in out


def test_requests_lists_recent_requests_with_filters_and_trace_last(setup: dict[str, Any]) -> None:
    g = setup["g"]
    client = _oai(g)
    setup["oai"].script(Reply("one"), Reply("two"))
    client.chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "1"}])
    client.chat.completions.create(model="cheap", max_tokens=500, messages=[{"role": "user", "content": "2"}])
    setup["ant"].stop()  # the frontier is gone: this one fails
    with pytest.raises(openai.APIError):
        client.chat.completions.create(model="claude", max_tokens=500, messages=[{"role": "user", "content": "3"}])
    g.flush()
    cfg = setup["cfg"]

    def ids(*args: str) -> list[dict[str, Any]]:
        res = _run("requests", "-c", cfg, "--json", *args)
        assert res.exit_code == 0, res.output
        return orjson.loads(res.output)

    everything = ids()
    assert [r["route"] for r in everything] == ["claude", "cheap", "main"]  # newest first
    assert [r["route"] for r in ids("--route", "cheap")] == ["cheap"]
    assert [r["route"] for r in ids("--model", "local")] == ["cheap"]  # the model that answered
    assert [r["route"] for r in ids("--model", "claude")] == ["claude"]  # the name the client asked for
    assert [r["route"] for r in ids("--status", "error")] == ["claude"]
    assert [r["route"] for r in ids("--status", "ok")] == ["cheap", "main"]
    assert ids("--since", "1h") == everything
    assert ids("--since", time.strftime("%Y-%m-%d", time.localtime(time.time() + 2 * 86400))) == []
    assert [r["route"] for r in ids("-n", "1")] == ["claude"]
    table = _run("requests", "-c", cfg)
    assert table.exit_code == 0 and everything[0]["request_id"] in table.output
    assert _run("requests", "-c", cfg, "--status", "fine").exit_code == 2  # a clear usage error

    last = _run("trace", "-c", cfg, "--last")
    assert last.exit_code == 0, last.output
    assert everything[0]["request_id"] in last.output and "route claude" in last.output
    assert _run("trace", "-c", cfg).exit_code == 2  # neither an id nor --last


def test_streamed_answers_carry_id_route_and_first_steps_as_headers(setup: dict[str, Any]) -> None:
    g = setup["g"]
    setup["oai"].script(Reply("streamed words here"))
    body = {"model": "cheap", "max_tokens": 500, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", g.url + "/v1/chat/completions", json=body, timeout=20) as r:
        assert r.status_code == 200
        headers = dict(r.headers)
        "".join(r.iter_text())
    assert headers["x-tierwise-request-id"].startswith("req_")
    assert headers["x-tierwise-route"] == "cheap"
    # At the first byte the call is still streaming: its outcome (`-`) is not known yet.
    assert headers["x-tierwise-steps"] == "call:local:-"
    # The Anthropic client sees the same.
    setup["ant"].script(Reply("streamed"))
    client = anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0)
    with client.messages.with_streaming_response.create(
            model="claude", max_tokens=500, stream=True, messages=[{"role": "user", "content": "hi"}]) as resp:
        assert resp.headers["x-tierwise-route"] == "claude"
        assert resp.headers["x-tierwise-steps"] == "call:frontier:-"
        resp.read()


def test_report_counts_ensemble_runs_like_the_mcp_tool(tmp_path: Path) -> None:
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text("ledger: {path: ledger.db}\n")
    led = Ledger.open(str(tmp_path / "ledger.db"))
    now = time.time()
    led.submit(LedgerRecord(request_id="req_a", ts=now, route="main", decision="local", locality="local",
                            cost_usd=0.0, reference_cost_usd=0.01))
    led.submit(LedgerRecord(request_id="ens_b", ts=now, route="ensemble:digest", kind="ensemble",
                            decision="synthesise", locality="local", cost_usd=0.0, input_tokens=40))
    led.close()
    rep = orjson.loads(_run("report", "-c", str(cfg), "--json").output)
    rows = {r["key"]: r for r in rep["rows"]}
    assert rows["ensemble:digest"]["requests"] == 1 and rows["ensemble:digest"]["input_tokens"] == 40
    assert rep["total"]["requests"] == 2


def test_report_days_window_says_what_it_left_out(tmp_path: Path) -> None:
    """`--days N` with nothing that recent does not claim the ledger is empty; a window of 0 or
    fewer days is refused instead of silently meaning "everything" (0) or "nothing" (-1)."""
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text("ledger: {path: ledger.db}\n")
    led = Ledger.open(str(tmp_path / "ledger.db"))
    led.submit(LedgerRecord(request_id="req_old", ts=time.time() - 10 * 86400, route="main", cost_usd=0.0))
    led.close()
    out = _run("report", "-c", str(cfg), "--days", "1").output
    assert "no requests in the last 1 day(s)" in out and "no requests yet" not in out
    assert "main" in _run("report", "-c", str(cfg), "--days", "30").output
    for bad in ("0", "-1"):
        res = CliRunner().invoke(cli, ["report", "-c", str(cfg), "--days", bad])
        assert res.exit_code == 2 and "--days" in res.output


def test_report_takes_since_like_requests(tmp_path: Path) -> None:
    """`requests --since 2h` worked and `report --since 2h` was "No such option" (only --days)."""
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text("ledger: {path: ledger.db}\n")
    led = Ledger.open(str(tmp_path / "ledger.db"))
    led.submit(LedgerRecord(request_id="req_old", ts=time.time() - 5 * 3600, route="old", cost_usd=0.0))
    led.submit(LedgerRecord(request_id="req_new", ts=time.time() - 60, route="new", cost_usd=0.0))
    led.close()
    rows = orjson.loads(_run("report", "-c", str(cfg), "--since", "2h", "--json").output)["rows"]
    assert [r["key"] for r in rows] == ["new"]
    rows = orjson.loads(_run("report", "-c", str(cfg), "--since", "1d", "--json").output)["rows"]
    assert [r["key"] for r in rows] == ["new", "old"]
    assert "no requests since 30s" in _run("report", "-c", str(cfg), "--since", "30s").output
    res = CliRunner().invoke(cli, ["report", "-c", str(cfg), "--since", "yesterday"])
    assert res.exit_code == 2 and "use a duration like 30m" in res.output


def test_cached_tokens_of_llama_cpp_builds_that_report_them_in_timings_only(setup: dict[str, Any]) -> None:
    """Older llama.cpp builds send no prompt_tokens_details: the cached count is `timings.cache_n`."""
    g = setup["g"]
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "tiny",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 519, "completion_tokens": 8, "total_tokens": 527},
            "timings": {"cache_n": 518, "prompt_n": 1, "predicted_n": 8}}
    setup["oai"].script(Raw(200, orjson.dumps(body)))
    r = _oai(g).chat.completions.with_raw_response.create(
        model="cheap", max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    g.flush()
    rec = Ledger.open(str(setup["dir"] / "ledger.db")).get(r.headers["x-tierwise-request-id"])
    assert rec is not None and (rec.input_tokens, rec.cache_read_tokens, rec.output_tokens) == (1, 518, 8)
