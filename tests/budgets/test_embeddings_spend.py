"""`POST /v1/embeddings` to a priced remote model counts in the USD and token budgets that cover its key and route.

Before session 29 the endpoint counted only in the rate limits ("an embeddings call is a proxy"): a remote
embeddings model bills every input token, and a key held to a small `per: key` budget embedded as much text as it
liked past it, counted $0 (the budget also missed it when chat had spent it already). Now each call is admitted
like one model call (its inputs' estimate at the model's input price), refused with 429 in OpenAI's schema once a
budget covering it is spent, and settled at the usage the upstream reports.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import drop_redis_keys, redis_up, unavailable, wait_for

KEY = "sk-gw-embed-aaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "sk-gw-embed-bbbbbbbbbbbbbbbbbbbbbbb"
PRICE = 100.0  # USD per million input tokens: one call of TEXT is about $0.05
TEXT = "embedding words " * 250
LIMIT = 0.2  # about four calls
REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("TW_EMB_A", KEY)
    monkeypatch.setenv("TW_EMB_B", OTHER)


def _config(url: str, budgets: dict) -> dict:
    return {
        "server": {"default_route": "emb", "api_keys_env": ["TW_EMB_A", "TW_EMB_B"]},
        "ledger": {"enabled": False},
        "providers": {"up": {"kind": "openai", "base_url": url + "/v1", "locality": "remote"}},
        "models": {"embedder": {"provider": "up", "model": "text-embedding-3-large",
                                "price": {"input": PRICE, "output": 0}}},
        "routes": {"emb": {"policy": "fallback", "targets": ["embedder"], "retries": 0}},
        "budgets": budgets,
    }


def _spent(g, name: str) -> list[dict]:
    def status() -> dict:
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    wait_for(lambda: status()["reservations_in_flight"] == 0)
    return [r for r in status()["budgets"] if r["budget"] == name]


def _paid(up) -> float:
    """What the upstream billed: the prompt tokens it reported, at PRICE."""
    from tests.doubles.base import estimate_tokens
    from tests.doubles.openai_double import _embedding_inputs

    return sum(estimate_tokens(t) for r in up.requests if r.path.endswith("/embeddings")
               for t in _embedding_inputs(r.body.get("input"))) * PRICE / 1e6


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_keys_budget_holds_for_embeddings(gateway, keys, openai_up, store):  # noqa: F811
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    budgets: dict = {"limits": [{"name": "per-key", "per": "key", "usd": LIMIT}]}
    if store == "redis":
        if not redis_up():
            unavailable("no Redis on 127.0.0.1:6379")
        budgets["store"] = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    try:
        g = gateway(_config(openai_up.url, budgets))
        a = oai(g, api_key=KEY)
        refused = []
        for _ in range(12):
            try:
                assert a.embeddings.create(model="emb", input=[TEXT]).data
            except openai.RateLimitError as e:  # in OpenAI's schema, naming the budget, with when to come back
                refused.append(e)
        paid = _paid(openai_up)
        row = _spent(g, "per-key")
        counted = sum(r["usd_used"] for r in row)
        # Before: 12 of 12 sent (about $0.58 of a $0.20 budget), $0 counted.
        assert refused, f"no call refused: ${paid:.4f} paid of a ${LIMIT} budget"
        assert "per-key" in refused[0].message and refused[0].response.headers.get("retry-after")
        assert paid <= LIMIT + 0.06  # at most one call's reservation over
        assert counted == pytest.approx(paid, rel=0.02)
        # The other key's budget is its own.
        assert oai(g, api_key=OTHER).embeddings.create(model="emb", input="short").data
    finally:
        if store == "redis":
            drop_redis_keys(REDIS_URL, prefix)


def test_concurrent_embeddings_overshoot_by_at_most_the_calls_in_flight(gateway, keys, openai_up):  # noqa: F811
    g = gateway(_config(openai_up.url, {"limits": [{"name": "all", "usd": LIMIT}]}))
    a = oai(g, api_key=KEY)

    def one(_: int) -> str:
        try:
            a.embeddings.create(model="emb", input=[TEXT])
            return "ok"
        except openai.RateLimitError:
            return "429"

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(one, range(40)))
    paid = _paid(openai_up)
    assert out.count("429") >= 20, out
    assert paid <= LIMIT + 8 * 0.06  # the remaining-mode bound: one reservation per call in flight


def test_a_token_budget_counts_embedding_tokens(gateway, keys, openai_up):  # noqa: F811
    g = gateway(_config(openai_up.url, {"limits": [{"name": "tok", "per": "key", "tokens": 1000}]}))
    a = oai(g, api_key=KEY)
    with pytest.raises(openai.RateLimitError):
        for _ in range(10):
            a.embeddings.create(model="emb", input=[TEXT])
    assert len([r for r in openai_up.requests if r.path.endswith("/embeddings")]) <= 3


def test_a_local_embeddings_model_spends_no_budget(gateway, keys, openai_up):  # noqa: F811
    cfg = _config(openai_up.url, {"limits": [{"name": "all", "usd": 0.0001}]})
    cfg["providers"]["up"]["locality"] = "local"
    cfg["models"]["embedder"].pop("price")
    g = gateway(cfg)
    a = oai(g, api_key=KEY)
    for _ in range(5):
        assert a.embeddings.create(model="emb", input=[TEXT]).data
    assert len(_spent(g, "all")) <= 1 and all(r["usd_used"] == 0 for r in _spent(g, "all"))


def test_an_embeddings_usage_that_is_not_a_count_is_billed_the_estimate(gateway, keys, openai_up):  # noqa: F811
    import orjson

    g = gateway(_config(openai_up.url, {"limits": [{"name": "all", "usd": 10.0}]}))
    a = oai(g, api_key=KEY)
    for usage in ({"prompt_tokens": -1_000_000_000}, {"prompt_tokens": "NaN"}, None):
        openai_up.embeddings_raw = orjson.dumps({"object": "list", "model": "m", "usage": usage,
                                                 "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]})
        assert a.embeddings.create(model="emb", input=[TEXT]).data
    counted = _spent(g, "all")[0]["usd_used"]
    # Never a credit: each call counted at the reservation's estimate (a third of the body's bytes: ~1,370 tokens,
    # $0.137; the double's own count of TEXT is ~1,000)
    assert 3 * 0.1 < counted < 3 * 0.15


@pytest.mark.parametrize("budgets", [{}, {"limits": [{"name": "all", "usd": 10.0}]}])
def test_a_remote_embeddings_call_has_a_ledger_row_in_the_savings_report(gateway, keys, openai_up, budgets):  # noqa: F811
    """Before (session 29, review29c): the budget counted the call but the ledger had no row of it, so its cost was
    missing from `tierwise savings`, the dashboard and `tierwise requests`."""
    from tierwise.ledger.report import savings

    cfg = _config(openai_up.url, budgets)
    cfg["ledger"] = {"path": "ledger.db"}
    g = gateway(cfg)
    for _ in range(2):
        assert oai(g, api_key=KEY).embeddings.create(model="emb", input=[TEXT]).data
    g.flush()
    rows = g.ledger.iter_rows("SELECT kind, status, decision, locality, input_tokens, cost_usd, extra FROM requests", [])
    paid = _paid(openai_up)
    assert len(rows) == 2, rows
    assert {(r["kind"], r["status"], r["decision"], r["locality"]) for r in rows} == {
        ("embeddings", 200, "embedder", "remote")}
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(paid, rel=0.02)
    assert all(KEY not in str(r["extra"]) for r in rows)  # the key's name, never the key
    row = next(r for r in savings(g.ledger) if r.key == "emb")
    assert row.requests == 2 and row.cost_usd == pytest.approx(paid, rel=0.02) and row.savings_usd == pytest.approx(0)


def test_a_local_embeddings_call_writes_no_ledger_row(gateway, keys, openai_up):  # noqa: F811
    cfg = _config(openai_up.url, {})
    cfg["providers"]["up"]["locality"] = "local"
    cfg["ledger"] = {"path": "ledger.db"}
    g = gateway(cfg)
    assert oai(g, api_key=KEY).embeddings.create(model="emb", input=[TEXT]).data
    g.flush()
    assert g.ledger.iter_rows("SELECT kind FROM requests", []) == []
