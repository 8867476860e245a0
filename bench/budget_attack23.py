"""Budgets under attack, session 23: what the frontier double was asked for against what the budget counted.

One in-process gateway per scenario (tests/harness.py), the memory store, one global budget; the frontier is
the Anthropic double at $3/$15 per million; clients are the official SDKs. "Paid" is what the double would bill:
for each request it received, the usage its reply states (it generated the whole reply, whether or not the
gateway waited for it). "Counted" is the budget's `usd_used` once every reservation is settled.

- timeout:     the frontier answers after its read timeout; the route falls back to the local model (every
               request answered). The double generated and billed every answer the gateway gave up on.
- cut-body:    the frontier's non-streamed 200 body is cut mid-way, retried twice then the local model.
- cut-burst:   cut-body with 20 requests at once (every first attempt is admitted before any is settled).
- bad-usage:   the frontier reports negative, NaN, string and 2**70 token counts (the budget must never go
               below zero or be credited back; the ledger's cost must stay >= 0).
- keys:        40 gateway keys ask at once against a global cap (overshoot: reservations in flight).
- bg-cancel:   background streams (a judge-like call) the reader drops after the first chunk.
- n:           n=4 on an Anthropic upstream (asked 4 times per request).

    PYTHONPATH=src .venv/bin/python bench/budget_attack23.py [--src OTHER/src] [--only NAME,...] [--store redis]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIN, POUT = 3.0, 15.0
LIMIT = 0.05
REDIS_URL = "redis://127.0.0.1:6379/0"
STORE: dict[str, Any] = {}  # budgets.store of every scenario (--store redis)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--only", default="")
    ap.add_argument("--store", choices=["memory", "redis"], default="memory",
                    help="redis: redis://127.0.0.1:6379/0 under a key prefix of the run's own, deleted after")
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    sys.path.insert(1, str(ROOT))
    only = set(filter(None, a.only.split(",")))
    for name, fn in SCENARIOS.items():
        if only and name not in only:
            continue
        if a.store == "redis":
            import uuid

            STORE.update(backend="redis", redis_url=REDIS_URL, key_prefix=f"tw-bench23:{uuid.uuid4().hex[:10]}:")
        try:
            paid, counted, note = fn()
        finally:
            if STORE:
                from tests.harness import drop_redis_keys

                drop_redis_keys(REDIS_URL, STORE["key_prefix"])
        print(f"{name:10s} [{a.store}] paid ${paid:.4f}  counted ${counted:.4f}  limit ${LIMIT}  {note}", flush=True)


def gateway(cfg: dict[str, Any]) -> tuple[Any, Any]:
    from tests.harness import GatewayServer, make_config

    return GatewayServer(make_config(cfg, Path(tempfile.mkdtemp()))).start(), None


def doubles() -> tuple[Any, Any]:
    from tests.doubles import AnthropicDouble, OpenAIDouble

    o, an = OpenAIDouble(), AnthropicDouble()
    o.start()
    an.start()
    return o, an


def base(o: Any, an: Any, **route: Any) -> dict[str, Any]:
    from tests.harness import two_tier_config

    cfg = two_tier_config(o.url, an.url, routes={"main": {"policy": "fallback", "targets": ["frontier", "local"],
                                                          **route}})
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": LIMIT}], **({"store": dict(STORE)} if STORE else {})}
    return cfg


def counted(g: Any) -> float:
    from tests.harness import wait_for

    def status() -> dict[str, Any]:
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    wait_for(lambda: status()["reservations_in_flight"] == 0)
    return float(next(r for r in status()["budgets"] if r["budget"] == "cap")["usd_used"])


def usd(u: tuple[int, int]) -> float:
    return (u[0] * PIN + u[1] * POUT) / 1e6


def ask(g: Any, i: int, key: str = "test", **kw: Any) -> str:
    import openai

    from tests.gateway.conftest import oai

    try:
        oai(g, api_key=key).chat.completions.create(model="main", max_tokens=400, messages=[
            {"role": "user", "content": f"question {i} " + "words " * 300}], **kw)
        return "ok"
    except openai.APIStatusError as e:
        return str(e.status_code)


def timeout() -> tuple[float, float, str]:
    from tests.doubles import Delay, Reply

    o, an = doubles()
    cfg = base(o, an, retries=0)
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 0.3}
    cfg["breaker"] = {"failures": 1000}
    g, _ = gateway(cfg)
    reply = (400, 400)
    an.default = Delay(0.6, Reply(text="late " * 400, usage=reply))
    o.default = Reply(text="local", usage=(10, 10))
    out = [ask(g, i) for i in range(10)]
    c = counted(g)
    g.stop()
    return len(an.requests) * usd(reply), c, f"{out.count('ok')}/10 answered, {len(an.requests)} frontier calls"


def cut_body(clients: int = 1, n: int = 10) -> tuple[float, float, str]:
    from tests.doubles import CutStream, Reply

    o, an = doubles()
    cfg = base(o, an, retries=2)
    cfg["breaker"] = {"failures": 1000}
    g, _ = gateway(cfg)
    reply = (400, 400)
    an.default = CutStream(1, Reply(text="cut " * 400, usage=reply))
    o.default = Reply(text="local", usage=(10, 10))
    with ThreadPoolExecutor(clients) as pool:
        out = list(pool.map(lambda i: ask(g, i), range(n)))
    c = counted(g)
    g.stop()
    return len(an.requests) * usd(reply), c, f"{out.count('ok')}/{n} answered, {len(an.requests)} frontier calls"


def cut_burst() -> tuple[float, float, str]:
    return cut_body(clients=20, n=20)


def bad_usage() -> tuple[float, float, str]:
    import orjson

    from tests.doubles import Raw

    o, an = doubles()
    cfg = base(o, an, retries=0)
    cfg["routes"]["main"]["targets"] = ["frontier"]
    g, _ = gateway(cfg)
    rows = []
    for u in ('{"input_tokens": -1000000000, "output_tokens": -1000000000}',
              '{"input_tokens": "NaN", "output_tokens": 1e400}', '{"input_tokens": NaN, "output_tokens": -Infinity}',
              '{"input_tokens": 1180591620717411303424, "output_tokens": 1180591620717411303424}',
              '{"input_tokens": "12", "output_tokens": -5}', '{}', '"none"'):
        body = orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "big-model",
                             "content": [{"type": "text", "text": "four words of answer"}],
                             "stop_reason": "end_turn", "usage": "U"}).decode().replace('"U"', u)
        an.default = Raw(200, body)
        rows.append(ask(g, 0))
    g.flush()
    costs = [r.cost_usd or 0.0 for r in g.ledger.query(route="main")]
    savings = [(r.reference_cost_usd or 0.0) - (r.cost_usd or 0.0) for r in g.ledger.query(route="main")]
    c = counted(g)
    g.stop()
    return 0.0, c, f"answers {rows}; ledger costs min {min(costs):.6f} max {max(costs):.6f}, savings min {min(savings):.6f}"


def keys() -> tuple[float, float, str]:
    from tests.doubles import Delay, Reply

    o, an = doubles()
    cfg = base(o, an, retries=0)
    cfg["routes"]["main"]["targets"] = ["frontier"]
    import os

    names = [f"TW_K{i}" for i in range(40)]
    for n in names:
        os.environ[n] = f"key-{n.lower()}-0123456789"
    cfg["server"]["api_keys_env"] = names
    g, _ = gateway(cfg)
    reply = (300, 400)
    an.default = Delay(0.3, Reply(text="answer " * 50, usage=reply))
    with ThreadPoolExecutor(40) as pool:
        out = list(pool.map(lambda i: ask(g, i, key=os.environ[names[i]]), range(40)))
    c = counted(g)
    g.stop()
    return len(an.requests) * usd(reply), c, f"{out.count('ok')}/40 answered at once"


def bg_cancel() -> tuple[float, float, str]:
    from tests.doubles import Reply, SlowStream
    from tierwise.budgets.background import BudgetSkipped, charge_background
    from tierwise.canonical import Message, Request, TextBlock

    o, an = doubles()
    cfg = base(o, an, retries=0)
    g, _ = gateway(cfg)
    reply = (1200, 400)
    an.default = SlowStream(0.01, Reply(text="word " * 400, usage=reply))

    async def one(i: int) -> str:
        ctx = g.gateway.context("main", f"bgc{i}", None, "main")
        charge_background(ctx)
        req = Request(model="frontier", messages=[Message("user", [TextBlock("grade " * 1000)])], max_tokens=400,
                      stream=True)
        try:
            it = await g.gateway.resolve("frontier").stream(req, ctx)
        except BudgetSkipped:
            return "skipped"
        async for _ in it:
            break  # the reader leaves after the first chunk
        await it.aclose()
        return "cut"

    out = [asyncio.run_coroutine_threadsafe(one(i), g.loop).result(30) for i in range(20)]
    c = counted(g)
    g.stop()
    # what a cut stream costs at most: the input the upstream read and its whole answer
    return len(an.requests) * usd(reply), c, f"{out.count('cut')} cut, {out.count('skipped')} skipped (paid: upper bound)"


def n_choices() -> tuple[float, float, str]:
    from tests.doubles import Reply

    o, an = doubles()
    cfg = base(o, an, retries=0)
    cfg["routes"]["main"]["targets"] = ["frontier"]
    g, _ = gateway(cfg)
    reply = (400, 400)
    an.default = Reply(text="answer " * 50, usage=reply)
    out = [ask(g, i, n=4) for i in range(6)]  # Anthropic has no n: the gateway asks 4 times per request
    c = counted(g)
    g.stop()
    return len(an.requests) * usd(reply), c, f"{out.count('ok')}/6 answered (n=4), {len(an.requests)} frontier calls"


SCENARIOS = {"timeout": timeout, "cut-body": cut_body, "cut-burst": cut_burst, "bad-usage": bad_usage, "keys": keys, "bg-cancel": bg_cancel,
             "n": n_choices}

if __name__ == "__main__":
    main()
