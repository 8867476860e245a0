"""A board field whose stamp Lua reads as a number but is not whole milliseconds (`<now>.5`, `1.7e12`, written by a
worker's user, which may HSET the workers' hash) is dropped by the exchange script (session 32, review32a). Before, it
was kept and every gateway's exchange raised in `int()` while it lived, so no gateway learnt any peer's statistics."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from tests.harness import drop_redis_keys
from tierwise.dispatch.blackboard_redis import RedisBoard

URL = "redis://127.0.0.1:6379/9"  # (databases 0-6 are other work's)


@pytest.mark.parametrize("form", ["{now}.5", "{now}e0", "0x{hexnow}"])
def test_a_stamp_that_is_not_whole_milliseconds_is_dropped(form):
    prefix = f"tw-test-board-stamp:{uuid.uuid4().hex[:8]}:"
    key = prefix + "board"
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        sec, usec = r.time()
        now = sec * 1000 + usec // 1000
        r.hset(key, "evil", form.format(now=now, hexnow=format(now, "x")) + " {}")

        async def go() -> list[tuple[str, int, bytes, bool]]:
            b = RedisBoard(URL, key, timeout=5.0)
            try:
                return (await b.exchange("me", b"{}", 60_000))[1]
            finally:
                await b.client.aclose()

        assert [x[0] for x in asyncio.run(go())] == []
        assert not r.hexists(key, "evil")
    finally:
        r.close()
        drop_redis_keys(URL, prefix)
