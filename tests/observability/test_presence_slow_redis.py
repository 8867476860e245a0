"""The dashboard's worker list read from a Redis that answers slowly (a TCP proxy delays every reply; real Redis on
db 7 behind it). Every `/dashboard/api/topology` and `/metrics` call that found the list older than
`presence_refresh` started its own walk of the presence keys (SCAN, then four commands a worker), and each walk held
its own Redis connection: with a walk slower than `presence_refresh`, the walks piled up, one more Redis connection
for every dashboard poll and scrape, and each caller waited for the whole walk. Now one walk runs at a time."""

from __future__ import annotations

import threading
import time
import uuid

import httpx2 as httpx
import orjson
import pytest
import redis

from tests.budgets.test_store_outage import FreezableProxy

REDIS_PORT = 6379
DB = 7  # this file's own keys, under a prefix of its own


class CountingProxy(FreezableProxy):
    """FreezableProxy that counts the connections opened to Redis through it, and the most open at once."""

    def __init__(self, port: int) -> None:
        self.opened = 0
        self.open_now = 0
        self.most_open = 0
        super().__init__(port)

    async def _conn(self, r, w) -> None:  # type: ignore[no-untyped-def]
        self.opened += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await super()._conn(r, w)
        finally:
            self.open_now -= 1


@pytest.fixture
def presence():
    r = redis.Redis(port=REDIS_PORT, db=DB)
    prefix = f"tierwise-test-{uuid.uuid4().hex[:12]}:"
    yield r, prefix
    for k in r.scan_iter(match=prefix + "*"):
        r.delete(k)
    r.close()


def test_one_presence_walk_at_a_time_against_a_slow_redis(two_tier, presence):
    r, prefix = presence
    for i in range(30):
        r.set(f"{prefix}presence:default:w{i:02d}", orjson.dumps({"capabilities": ["code"]}), ex=300)
    proxy = CountingProxy(REDIS_PORT)
    proxy.delay = 0.05  # each command ~0.1 s there and back: a walk of 30 workers takes ~12 s
    try:
        g = two_tier(dispatch={"redis_url": f"redis://127.0.0.1:{proxy.port}/{DB}", "prefix": prefix},
                     observability={"metrics": {"enabled": True},
                                    "dashboard": {"enabled": True, "presence_refresh": 0.05}})
        answers: list[int] = []

        def poll(path: str) -> None:
            try:
                answers.append(httpx.get(g.url + path, timeout=60).status_code)
            except httpx.TransportError:
                answers.append(0)

        threads = []
        for i in range(16):  # four dashboards polling and a scraper, for a few seconds
            t = threading.Thread(target=poll, args=("/metrics" if i % 4 == 0 else "/dashboard/api/topology",))
            t.start()
            threads.append(t)
            time.sleep(0.2)
        for t in threads:
            t.join(70)
        assert answers == [200] * 16
        # One walk at a time holds one connection (redis-py's pool keeps it for the next walk).
        assert proxy.most_open <= 1, f"{proxy.most_open} connections to Redis open at once for the worker list"
    finally:
        proxy.frozen.clear()
        proxy.stop()
