"""What a hostile worker's Redis user tries on the shared keys of its capability (session 36, dist7): destroy or empty
a task queue, the presence index, a done mark, the blackboard hash, the wake list. One list for the test of the
printed rules (tests/dispatch/test_worker_rules_per_key.py, async client) and bench/worker_rules_attack.py (sync); and
which of a test's attempts (these or its own) a hostile Redis user was let make."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis

from tierwise.dispatch.keys import Keyspace


def shared_key_attempts(r: Any, keys: Keyspace, queue: str, waiting: str, board_key: str) -> dict[str, Callable[[], Any]]:
    """Each attempt by name, on the client `r` (redis or redis.asyncio): `queue` is a task queue of `classify`,
    `waiting` one that holds an entry (the same key where each attempt starts afresh), `board_key` the tenant's
    blackboard hash. Every one of them is refused (NOPERM) under a worker's printed rules."""
    index = keys.index("any", "classify")
    return {
        "DEL a task queue": lambda: r.delete(queue),
        "SET a task queue (WRONGTYPE for every publish)": lambda: r.set(waiting, "x"),
        "XADD MAXLEN 0 to a task queue": lambda: r.xadd(waiting, {"x": "1"}, maxlen=0),
        "PEXPIRE a task queue": lambda: r.pexpire(waiting, 1),
        "DEL the presence index": lambda: r.delete(index),
        "SET the presence index": lambda: r.set(index, "x"),
        "ZREMRANGEBYSCORE the presence index": lambda: r.zremrangebyscore(index, "-inf", "+inf"),
        "PEXPIRE the presence index": lambda: r.pexpire(index, 1),
        "read the index's member names": lambda: r.zrangebyscore(index, "-inf", "+inf"),
        "DEL a done mark": lambda: r.delete(keys.done("task_x")),
        "SET the board hash (WRONGTYPE for every exchange)": lambda: r.set(board_key, "x"),
        "DEL the wake list": lambda: r.delete(keys.wake("any", "classify")),
    }


async def let_through(attempts: dict[str, Callable[[], Awaitable[Any]]], wrongtype_too: bool = False) -> list[str]:
    """The names of the attempts (async calls) the server did not refuse with NOPERM, in order. With `wrongtype_too`
    a WRONGTYPE (any other error reply) counts as let through: an earlier attempt's SET changed the key's type."""
    allowed = []
    for what, attempt in attempts.items():
        try:
            await attempt()
            allowed.append(what)
        except redis.exceptions.NoPermissionError:
            pass
        except redis.exceptions.ResponseError:
            if not wrongtype_too:
                raise
            allowed.append(what)
    return allowed
