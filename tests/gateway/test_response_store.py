"""The store behind `previous_response_id`: every bound holds (count, bytes in all, bytes per
response, time to live) and one owner cannot read another's responses."""

from __future__ import annotations

from tierwise.server.response_store import ResponseStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(**kw) -> tuple[ResponseStore, Clock]:
    clock = Clock()
    args = {"max_count": 10, "max_bytes": 10_000, "max_response_bytes": 1_000, "ttl_s": 60.0, **kw}
    return ResponseStore(clock=clock, **args), clock


ITEMS = [{"type": "message", "role": "user", "content": "hi"}]


def test_round_trip_and_owner_isolation():
    s, _ = store()
    assert s.put("owner-a", "resp_1", ITEMS)
    assert s.get("owner-a", "resp_1") == ITEMS
    assert s.get("owner-b", "resp_1") is None
    assert s.get("", "resp_1") is None
    assert s.get("owner-a", "resp_2") is None
    assert s.get("owner-a", ["not", "a", "string"]) is None


def test_ttl():
    s, clock = store(ttl_s=60.0)
    s.put("o", "r", ITEMS)
    clock.now += 59
    assert s.get("o", "r") == ITEMS
    clock.now += 2
    assert s.get("o", "r") is None
    assert len(s) == 0 and s.bytes == 0


def test_count_bound_evicts_oldest():
    s, _ = store(max_count=3)
    for i in range(5):
        s.put("o", f"r{i}", ITEMS)
    assert len(s) == 3
    assert s.get("o", "r0") is None and s.get("o", "r1") is None and s.get("o", "r4") == ITEMS


def test_byte_bounds():
    big = [{"type": "message", "role": "user", "content": "x" * 400}]
    s, _ = store(max_bytes=1_000, max_response_bytes=600)
    assert not s.put("o", "huge", [{"type": "message", "role": "user", "content": "x" * 700}])
    assert s.get("o", "huge") is None
    for i in range(4):
        assert s.put("o", f"r{i}", big)
    assert s.bytes <= 1_000 and len(s) == 2
    assert s.get("o", "r3") == big and s.get("o", "r0") is None


def test_expired_entries_leave_before_new_ones_are_counted():
    s, clock = store(max_count=2)
    s.put("o", "old", ITEMS)
    clock.now += 120
    s.put("o", "a", ITEMS)
    s.put("o", "b", ITEMS)
    assert s.get("o", "a") == ITEMS and s.get("o", "b") == ITEMS and len(s) == 2


def test_zero_count_stores_nothing():
    s, _ = store(max_count=0)
    assert not s.put("o", "r", ITEMS) and len(s) == 0
