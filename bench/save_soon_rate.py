"""How often a Redis-budgeted gateway writes its spend mirror into the ledger's SQLite file (budgets/spend_file.py)
under a flood of answered requests: the saves settlements ask for (store_redis.SAVE_SOON, 0.1 s) plus the looks'
(once a second). Counts `SpendFile.save` calls, the rows they wrote and the seconds spent in them, per second of
traffic; then, with `--locked`, the same while another connection holds the ledger file's lock (the save tasks left
waiting at the end). 50 OpenAI SDK clients, the Anthropic double answering at once, Redis db 8.

    PYTHONPATH=src .venv/bin/python bench/save_soon_rate.py [--seconds 10] [--locked]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.doubles import AnthropicDouble, Reply  # noqa: E402
from tests.harness import GatewayServer, drop_redis_keys, make_config, two_tier_config  # noqa: E402
from tierwise.budgets import spend_file  # noqa: E402

DB = "redis://127.0.0.1:6379/8"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--locked", action="store_true")
    a = ap.parse_args()
    calls: list[tuple[float, int]] = []  # (seconds in the save, rows)
    real = spend_file.SpendFile.save

    def counted(self, member, epoch, offers, now, whole=True):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return real(self, member, epoch, offers, now, whole)
        finally:
            calls.append((time.perf_counter() - t, len(offers)))

    spend_file.SpendFile.save = counted  # type: ignore[method-assign]
    up = AnthropicDouble()
    up.default = Reply(text="ok", usage=(40, 40))
    up.start()
    prefix = f"tierwise-bench-savesoon:{uuid.uuid4().hex[:8]}:"
    cfg = two_tier_config(up.url, up.url, local_kind="anthropic",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"store": {"backend": "redis", "redis_url": DB, "key_prefix": prefix},
                      "limits": [{"name": "cap", "usd": 1000.0}]}
    os.chdir(tempfile.mkdtemp())
    cfg["ledger"] = {"path": str(Path("ledger.db").resolve())}
    g = GatewayServer(make_config(cfg, Path("."))).start()
    answered = 0

    async def run() -> None:
        nonlocal answered
        hc = httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=50))
        oc = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="k", max_retries=0, http_client=hc)
        stop = time.monotonic() + a.seconds

        async def one() -> None:
            nonlocal answered
            while time.monotonic() < stop:
                await oc.chat.completions.create(model="main", max_tokens=50,
                                                 messages=[{"role": "user", "content": "hi"}])
                answered += 1

        await asyncio.gather(*(one() for _ in range(50)))
        await hc.aclose()

    lock = None
    try:
        asyncio.run(run())  # (warm: the first save writes the whole mirror)
        calls.clear()
        answered = 0
        if a.locked:
            lock = sqlite3.connect("ledger.db", isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
        asyncio.run(run())

        async def pending() -> int:
            return sum(1 for t in g.gateway.spend.store._tasks if not t.done())

        waiting = asyncio.run_coroutine_threadsafe(pending(), g.loop).result(10)
        n = len(calls)
        print(f"{a.seconds:g} s, {answered} answered ({answered / a.seconds:.0f}/s); SpendFile.save calls {n} "
              f"({n / a.seconds:.1f}/s), rows {sum(c[1] for c in calls)}, seconds in them "
              f"{sum(c[0] for c in calls):.3f} (longest {max((c[0] for c in calls), default=0) * 1000:.1f} ms); "
              f"save tasks pending at the end: {waiting}" + (" (ledger file locked)" if a.locked else ""))
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
        g.stop()
        up.stop()
        drop_redis_keys(DB, prefix)


if __name__ == "__main__":
    main()
