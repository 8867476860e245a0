"""A client's own text that the gateway keeps beside the request (the `model` it asked for, its
`x-tierwise-feature` tag) holding a secret the gateway knows: the ledger and the OTLP spans must not keep it.

A misconfigured client puts a key where a name goes (an SDK's model variable set to the key, a tag template that
expands an environment variable); with `server.default_route` any model name is served. Before session 29 the
ledger's `requested_model` and `feature` columns and the server span's `gen_ai.request.model` kept such a value as
sent (the scrubber ran over the record's free text only), so it reached the disk, `ledger export`s and the trace
collector. Real HTTP on loopback, the OTLP receiver double.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.doubles import OpenAIDouble, Reply
from tests.harness import GatewayServer, make_config
from tests.observability.otlp_receiver import OTLPReceiver

GW = "tw-gw-" + secrets.token_hex(16)  # a gateway key (registered by value)
ADMIN = "tw-adm-" + secrets.token_hex(16)
PASTED = "sk-proj-" + secrets.token_hex(24)  # a key the gateway never saw: found by its shape


def _found(text: str) -> list[str]:
    return [
        name
        for name, s in (("gateway key", GW), ("admin key", ADMIN), ("sk- key", PASTED))
        if any(s[i : i + 12] in text for i in range(len(s) - 11))
    ]


def test_a_secret_in_the_requested_model_or_the_feature_tag_reaches_neither_ledger_nor_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_CT_GW", GW)
    monkeypatch.setenv("TW_CT_ADMIN", ADMIN)
    up = OpenAIDouble().start()
    receiver = OTLPReceiver().start()
    data = {
        "server": {"api_keys_env": ["TW_CT_GW"], "admin_keys_env": ["TW_CT_ADMIN"], "default_route": "main"},
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"oai": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local"}},
        "models": {"local": {"provider": "oai", "model": "qwen"}},
        "routes": {"main": {"policy": "fallback", "targets": ["local"]}},
        "observability": {"tracing": {"endpoint": receiver.url + "/v1/traces", "interval": 0.05}},
    }
    g = GatewayServer(make_config(data, tmp_path)).start()
    sent = [(ADMIN, PASTED), ("gpt-" + PASTED, GW), (f"model {GW}", f"feature {ADMIN}")]
    try:
        up.script(*[Reply(text="ok")] * len(sent))
        with httpx.Client(timeout=20) as c:
            for model, feature in sent:
                r = c.post(
                    g.url + "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"authorization": f"Bearer {GW}", "x-tierwise-feature": feature},
                )
                assert r.status_code == 200, r.text
        g.flush()
    finally:
        g.stop()  # (exports the spans still queued)
        up.stop()
        receiver.stop()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = list(db.execute("SELECT requested_model, feature FROM requests"))
    assert len(rows) == len(sent)
    assert not _found(repr(rows)), rows
    assert all("[redacted]" in m and "[redacted]" in f for m, f in rows), rows  # kept, the secret replaced
    spans = "\n".join(str(s) for s in receiver.spans)
    assert "gen_ai.request.model" in spans, "no server span reached the receiver: this proves nothing"
    assert not _found(spans)


def test_a_gateway_key_sent_as_a_session_or_tag_is_not_shown_to_the_viewer_in_the_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `/v1/tierwise/budgets` shows an admin or a viewer every bucket, tags and sessions included (client text):
    # a client whose session id is its own key showed that key to every viewer (session 29).
    monkeypatch.setenv("TW_CT_GW", GW)
    monkeypatch.setenv("TW_CT_ADMIN", ADMIN)
    monkeypatch.setenv("TW_CT_VIEW", "tw-view-" + secrets.token_hex(16))
    up = OpenAIDouble().start()
    data = {
        "server": {"api_keys_env": ["TW_CT_GW"], "admin_keys_env": ["TW_CT_ADMIN"]},
        "providers": {"oai": {"kind": "openai", "base_url": up.url + "/v1"}},  # remote: budgets count it
        "models": {"local": {"provider": "oai", "model": "qwen"}},
        "routes": {"main": {"policy": "fallback", "targets": ["local"]}},
        "budgets": {
            "limits": [
                {"name": "sessions", "per": "session", "tokens": 2_000_000, "window": "day"},
                {"name": "tags", "per": "tag", "tokens": 2_000_000, "window": "day"},
            ]
        },
        "observability": {"dashboard": {"enabled": True, "viewer_keys_env": ["TW_CT_VIEW"]}},
    }
    g = GatewayServer(make_config(data, tmp_path)).start()
    try:
        up.script(Reply(text="ok"))
        with httpx.Client(timeout=20) as c:
            r = c.post(
                g.url + "/v1/chat/completions",
                json={"model": "main", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {GW}", "x-tierwise-session": GW, "x-tierwise-tag": ADMIN},
            )
            assert r.status_code == 200, r.text
            g.flush()
            seen = {
                who: c.get(g.url + "/v1/tierwise/budgets", headers={"authorization": "Bearer " + key})
                for who, key in (("viewer", os.environ["TW_CT_VIEW"]), ("admin", ADMIN))
            }
    finally:
        g.stop()
        up.stop()
    for who in ("viewer", "admin"):
        r = seen[who]
        assert r.status_code == 200, r.text
        rows = r.json()["budgets"]
        assert {row["per"] for row in rows} >= {"session", "tag"}, (
            rows
        )  # the buckets are there, values hidden
        assert not _found(r.text), (who, r.text)


def test_a_name_found_clean_is_scrubbed_once_it_becomes_a_known_secret() -> None:
    # review29f: the ledger remembers names found clean (a set lookup per request instead of two calls); a secret
    # registered later (a config reload, a key read at call time) must not find its value remembered as clean.
    from tierwise import secret_scrub
    from tierwise.ledger.records import LedgerRecord, scrub_record

    name = "tw-late-" + secrets.token_hex(16)
    first = scrub_record(
        LedgerRecord(request_id="r1", ts=0.0, route="main", requested_model=name, feature=name)
    )
    assert (first.requested_model, first.feature) == (name, name)  # not a secret yet: kept as sent
    secret_scrub.register([name])
    later = scrub_record(
        LedgerRecord(request_id="r2", ts=0.0, route="main", requested_model=name, feature=name)
    )
    assert later.requested_model == later.feature == "[redacted]"
    bare = scrub_record(
        LedgerRecord(request_id="r3", ts=0.0, route="main")
    )  # no name: nothing to scrub, none made
    assert (bare.requested_model, bare.feature) == (None, None)
