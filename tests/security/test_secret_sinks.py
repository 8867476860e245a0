"""Every secret the gateway holds, against every place its text goes, in one gateway with every sink on.

Secrets: two upstream keys, a client's gateway key, an admin key, a viewer key, a Redis URL's password and an OTLP
receiver header. Traffic: a fallback whose upstreams both fail echoing the key they were sent; a cascade whose
draft reproduces its upstream key and whose judge quotes it in its verdict, on a prompt where the client pasted its
own gateway key and the admin key (captured on the span with `tracing.capture_content`); a stream whose upstream
error echoes its key. Sinks: what the client read, the log, the spans the OTLP receiver got, the dashboard's
recent rows, summary, topology and each trace as the admin, the viewer and the client, `/metrics`, `/health`,
`/v1/tierwise/budgets`, `/openapi.json`, `/v1/models`, the ledger's rows, the journal's files, `tierwise requests
--json`, `report`, `doctor` and `trace --json`. Real HTTP on loopback, the openai SDK as client.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import AnthropicDouble, Fail, OpenAIDouble, Reply, StreamError
from tests.harness import GatewayServer, make_config
from tests.observability.otlp_receiver import OTLPReceiver
from tierwise.cli import main as cli

ENV = {"TW_SINK_OAI": "tw-oai-" + secrets.token_hex(20), "TW_SINK_ANT": "tw-ant-" + secrets.token_hex(20),
       "TW_SINK_GW": "tw-gw-" + secrets.token_hex(16), "TW_SINK_ADMIN": "tw-adm-" + secrets.token_hex(16),
       "TW_SINK_VIEW": "tw-view-" + secrets.token_hex(16)}
REDIS_PW = "rpw-" + secrets.token_hex(10)
OTLP_HEADER = "otlph-" + secrets.token_hex(12)
SECRETS = {**ENV, "redis password": REDIS_PW, "OTLP header": OTLP_HEADER}


def _sent(r: Any) -> str:
    return (r.headers.get("authorization") or r.headers.get("x-api-key") or "").removeprefix("Bearer ")


def _found(text: str) -> list[str]:
    return sorted({name for name, s in SECRETS.items() for i in range(len(s) - 11) if s[i:i + 12] in text})


def test_no_secret_reaches_any_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    oup, aup = OpenAIDouble(api_key=ENV["TW_SINK_OAI"]).start(), AnthropicDouble(api_key=ENV["TW_SINK_ANT"]).start()
    receiver = OTLPReceiver().start()
    data = {
        "server": {"api_keys_env": ["TW_SINK_GW"], "admin_keys_env": ["TW_SINK_ADMIN"]},
        "ledger": {"path": str(tmp_path / "ledger.db")}, "breaker": {"failures": 1000},
        "cache": {"enabled": False, "redis_url": f"redis://:{REDIS_PW}@127.0.0.1:6379/9"},
        "providers": {"oai": {"kind": "openai", "base_url": oup.url + "/v1", "api_key_env": "TW_SINK_OAI"},
                      "ant": {"kind": "anthropic", "base_url": aup.url, "api_key_env": "TW_SINK_ANT"}},
        "models": {"local": {"provider": "oai", "model": "qwen"}, "judge": {"provider": "oai", "model": "judge"},
                   "frontier": {"provider": "ant", "model": "big"}},
        "routes": {"chain": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
                   "judged": {"policy": "cascade", "tiers": ["local", "frontier"],
                              "verifiers": [{"type": "llm_judge", "model": "judge"}]}},
        "observability": {"dashboard": {"enabled": True, "viewer_keys_env": ["TW_SINK_VIEW"]},
                          "metrics": {"enabled": True},
                          "tracing": {"endpoint": receiver.url + "/v1/traces", "interval": 0.05,
                                      "capture_content": True, "headers": {"x-honeycomb-team": OTLP_HEADER}}},
    }
    g = GatewayServer(make_config(data, tmp_path)).start()
    sinks: dict[str, str] = {}
    client: list[str] = []
    try:
        oc = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key=ENV["TW_SINK_GW"], max_retries=0))
        aup.script(lambda r: Fail(500, f"you sent {_sent(r)}"))
        oup.script(lambda r: Fail(503, f"you sent Bearer {_sent(r)}"))
        with pytest.raises(openai.APIError) as e:
            oc.chat.completions.create(model="chain", messages=[{"role": "user", "content": "hi"}])
        client.append(str(e.value))
        oup.script(lambda r: Reply(text="draft: " + _sent(r)),
                   lambda r: Reply(text="the answer leaks " + _sent(r) + "\nVERDICT: poor"))
        aup.script(Reply(text="frontier answer"))
        pasted = f"my keys: {ENV['TW_SINK_GW']} {ENV['TW_SINK_ADMIN']}"
        client.append(oc.chat.completions.create(model="judged", messages=[{"role": "user", "content": pasted}])
                      .model_dump_json())
        oup.script(lambda r: StreamError(2, f"bad key {_sent(r)}", "server_error"))
        with pytest.raises(openai.APIError) as e:
            for chunk in oc.chat.completions.create(model="local", stream=True,
                                                    messages=[{"role": "user", "content": "hi"}]):
                client.append(chunk.model_dump_json())
        client.append(str(e.value))
        g.flush()
        assert len(oup.requests) >= 4 and len(aup.requests) >= 2, "the doubles were not asked: this proves nothing"
        with httpx.Client(timeout=10) as c:
            admin = {"authorization": "Bearer " + ENV["TW_SINK_ADMIN"]}
            ids = [row["id"] for row in c.get(g.url + "/dashboard/api/recent", headers=admin).json()["rows"]]
            assert len(ids) == 3
            for who in ("TW_SINK_ADMIN", "TW_SINK_VIEW", "TW_SINK_GW"):
                hd = {"authorization": "Bearer " + ENV[who]}
                paths = ["/dashboard/api/recent", "/dashboard/api/summary", "/dashboard/api/topology", "/metrics",
                         "/health", "/v1/tierwise/budgets", "/openapi.json", "/v1/models",
                         *(f"/dashboard/api/trace?id={i}" for i in ids)]
                sinks[f"HTTP as {who}"] = "\n".join(c.get(g.url + p, headers=hd).text for p in paths)
    finally:
        g.stop()  # (exports the spans still queued)
        oup.stop()
        aup.stop()
        receiver.stop()
    sinks["client"] = "\n".join(client)
    sinks["log"] = caplog.text
    sinks["spans"] = "\n".join(str(s) for s in receiver.spans)
    assert "my keys" in sinks["spans"], "the captured content never reached a span"
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        sinks["ledger"] = "\n".join(repr(row) for row in db.execute("SELECT * FROM requests"))
    journal = [p for p in tmp_path.rglob("*") if p.is_file() and "journal" in str(p)]
    sinks["journal"] = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in journal)
    cfg = tmp_path / "tw.yaml"
    cfg.write_text(yaml.safe_dump(data))
    runs = [["requests", "-c", str(cfg), "--json"], ["report", "-c", str(cfg)], ["doctor", "-c", str(cfg)],
            *(["trace", "-c", str(cfg), "--json", i] for i in ids)]
    sinks["CLI"] = "\n".join(CliRunner().invoke(cli, a).output for a in runs)
    assert ids[0] in sinks["CLI"]
    leaked = {sink: _found(text) for sink, text in sinks.items() if _found(text)}
    assert not leaked, leaked
