"""How a replica merges the others' statistics (the exchange with Redis replaced by a fake that
returns what other replicas published): weights, sums, age discount, and entries it cannot read."""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.dispatch.blackboard import Blackboard
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.providers.live_stats import LiveStats


class FakeRedis:
    def __init__(self, entries: list[tuple[str, int, bytes]], workers: list[tuple[str, int, bytes]] = ()) -> None:
        self.entries = [(*e, False) for e in entries] + [(*e, True) for e in workers]

    async def exchange(self, replica: str, payload: bytes,
                       ttl_ms: int) -> tuple[int, list[tuple[str, int, bytes, bool]]]:
        return 1_000_000, self.entries


def replica(latency: float, calls: int, *, idle_s: float = 0.0, in_flight: int = 0) -> LiveStats:
    st = LiveStats(window=20)
    for _ in range(calls):
        st.ok(latency, latency / 2)
    st.last_at -= idle_s
    st.in_flight = in_flight
    return st


def published(stats: dict[str, LiveStats]) -> bytes:
    return Blackboard(BlackboardConfig(), stats).payload()


async def merged(own: dict[str, LiveStats], entries: list[tuple[str, int, bytes]]) -> Blackboard:
    b = Blackboard(BlackboardConfig(), own, "redis://unused")
    b._transport = FakeRedis(entries)
    await b.exchange()
    return b


async def test_weighted_by_recent_calls_and_summed():
    own = {"local": replica(20.0, 10, in_flight=1)}
    peer = published({"local": replica(600.0, 10, in_flight=3)})
    b = await merged(own, [("peer", 999_900, peer)])
    assert b.replicas == 1 and b.degraded is None
    assert abs(b.value("local", "latency_ms") - 310.0) < 1  # equal weights: the mean
    assert b.value("local", "in_flight") == 4  # summed over replicas
    assert abs(b.samples("local") - 20) < 0.1


async def test_a_replica_that_stopped_calling_does_not_outvote_a_fresh_one():
    own = {"local": replica(20.0, 10)}
    stale = published({"local": replica(600.0, 20, idle_s=600)})  # slow, ten minutes ago
    b = await merged(own, [("old", 999_900, stale)])
    assert b.value("local", "latency_ms") < 25  # undiscounted it would be (10*20 + 20*600) / 30 = 407


async def test_unreadable_entries_are_ignored():
    own = {"local": replica(20.0, 5)}
    junk: list[tuple[str, int, bytes]] = [
        ("a", 999_900, b"not json"), ("b", 999_900, b"[1, 2]"), ("c", 999_900, b'{"models": 5}'),
        ("d", 999_900, orjson.dumps({"models": {"local": {"w": "9", "latency_ms": "fast"}}})),
        ("e", 999_900, orjson.dumps({"models": {"local": {"w": 5, "latency_ms": 1e309}}})),  # inf
        ("f", 999_900, b"{" * 100_000),
    ]
    b = await merged(own, junk)
    assert abs(b.value("local", "latency_ms") - 20.0) < 1e-6  # only its own numbers count


async def test_breaker_open_anywhere_is_open():
    from tierwise.providers.breaker import CircuitBreaker

    theirs = CircuitBreaker(failures_to_open=1, cooldown=60)
    theirs.failure()
    st = replica(20.0, 3)
    st.breaker = theirs
    mine = CircuitBreaker(failures_to_open=1, cooldown=60)
    own = replica(20.0, 3)
    own.breaker = mine
    b = await merged({"local": own}, [("peer", 999_900, published({"local": st}))])
    assert b.value("local", "breaker_open") == 1.0
    assert mine.state == "open" and 55 < mine.retry_in() <= 60  # adopted, with the peer's cooldown left


def test_snapshot_lists_every_statistic():
    b = Blackboard(BlackboardConfig(), {"local": replica(20.0, 3)})
    snap: dict[str, Any] = b.snapshot()
    assert snap["shared"] is False and snap["replicas"] == 1
    assert snap["models"]["local"]["latency_ms"] == 20.0 and snap["models"]["local"]["ttft_ms"] == 10.0
