"""Redis frozen mid-traffic under a budgeted gateway: statuses and worst latency per second, then what the
budget counted against what the upstream really answered, and the reservations left in flight.

A TCP proxy (tests/budgets/test_store_outage.py's) sits between the gateway and Redis; after 3 s it holds
every byte for 4 s, then lets them through. 20 OpenAI SDK clients ask for 12 s.

    PYTHONPATH=src .venv/bin/python bench/budget_redis_freeze.py [fail_closed|fail_open]
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.budgets.test_store_outage import FreezableProxy  # noqa: E402
from tests.doubles import AnthropicDouble, Delay, Reply  # noqa: E402
from tests.harness import GatewayServer, drop_redis_keys, make_config, two_tier_config  # noqa: E402

DB = "redis://127.0.0.1:6379/9"


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "fail_closed"
    up = AnthropicDouble()
    up.default = Delay(0.1, Reply(text="ok", usage=(40, 400)))
    up.start()
    px = FreezableProxy(6379)
    prefix = f"tierwise-bench-freeze:{uuid.uuid4().hex[:8]}:"
    cfg = two_tier_config(up.url, up.url, local_kind="anthropic",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"store": {"backend": "redis", "redis_url": f"redis://127.0.0.1:{px.port}/9",
                                "key_prefix": prefix, "on_store_error": mode},
                      "limits": [{"name": "cap", "usd": 100.0}]}
    os.chdir(tempfile.mkdtemp())
    g = GatewayServer(make_config(cfg, Path("."))).start()
    events: list[tuple[float, float, object]] = []

    async def run() -> None:
        hc = httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=50))
        oc = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="k", max_retries=0, http_client=hc)
        t00 = time.monotonic()
        stop = t00 + 12

        async def one() -> None:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                st: object
                try:
                    await oc.chat.completions.create(model="main", max_tokens=500,
                                                     messages=[{"role": "user", "content": "x"}])
                    st = 200
                except openai.APIStatusError as e:
                    st = e.status_code
                except Exception as e:  # noqa: BLE001 (reported as such)
                    st = type(e).__name__
                events.append((t0 - t00, time.monotonic() - t0, st))

        async def chaos() -> None:
            await asyncio.sleep(3)
            px.frozen.set()
            await asyncio.sleep(4)
            px.frozen.clear()

        await asyncio.gather(chaos(), *(one() for _ in range(20)))
        await hc.aclose()

    asyncio.run(run())
    per: dict[int, collections.Counter[object]] = collections.defaultdict(collections.Counter)
    worst: dict[int, float] = collections.defaultdict(float)
    for t, lat, st in events:
        per[int(t)][st] += 1
        worst[int(t)] = max(worst[int(t)], lat)
    for s in sorted(per):
        print(f"second {s:2d} {dict(per[s])} worst latency {worst[s]:.2f} s")
    time.sleep(3)
    st = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
    real = len(up.requests) * (40 * 3 + 400 * 15) / 1e6
    print(f"upstream calls {len(up.requests)}, spent ${real:.4f}, counted ${st['budgets'][0]['usd_used']:.4f}, "
          f"reservations in flight {st['reservations_in_flight']}")
    g.stop()
    up.stop()
    drop_redis_keys(DB, prefix)


if __name__ == "__main__":
    main()
