"""A session's calls are each timed from their own start (session 38, costs10). wire14 let a session whose call has
run `max_call_s` be closed for a newcomer (its call cut); its clock ran from when calls began in it without a pause,
so an agent whose calls overlapped back to back (each a few seconds, a new one before the last ended) looked like one
call running for ever, and the call cut for a newcomer was a young one. review37d wrote the fix but its HTTP test
hung (the package runs a session's calls one after another), so this drives the session table the HTTP layer keeps
(mcp_sessions.ClientSessions, as mcp_http.BearerAuth calls it) on its own clock."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise.errors import RateLimited
from tierwise.mcp_sessions import ClientSessions

MAX_CALL_S = 900.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _client(last: int) -> dict[str, Any]:
    return {"client": (f"127.0.0.{last}", 40000 + last), "hint": b""}


def _table(clock: Clock) -> ClientSessions:
    return ClientSessions(per_client=1, idle_s=1800.0, clock=clock, max_call_s=MAX_CALL_S)


def _open(t: ClientSessions, holder: dict[str, Any], sid: str) -> None:
    assert t.admit(holder) is None
    t.opened(sid, holder, [], "/mcp")


def test_overlapping_short_calls_are_not_one_long_call():
    clock = Clock()
    t = _table(clock)
    holder = _client(2)
    _open(t, holder, "s1")
    running = t.start("s1", post=True)
    assert running is not None
    for _ in range(40):  # 40 calls of 60 s, each begun 30 s before the last ended: 20 minutes busy without a pause
        clock.t += 30
        nxt = t.start("s1", post=True)
        assert nxt is not None
        clock.t += 30
        t.end("s1", *running, True, "POST", "/mcp", 200)
        running = nxt
    # The client opens another session (its one allowed is busy): the running call is 30 s old, so it is not cut.
    # Before: its session was closed for the new one (its calls timed from 20 minutes ago)
    with pytest.raises(RateLimited):
        t.admit(_client(2))
    assert "s1" in t.open


def test_a_call_past_the_bound_is_still_found_beside_young_ones():
    """The other way round: an endless call with short calls going on beside it is timed from its own start."""
    clock = Clock()
    t = _table(clock)
    _open(t, _client(2), "s1")
    endless = t.start("s1", post=True)
    assert endless is not None
    for _ in range(20):  # short calls beside it, each ending before the next
        short = t.start("s1", post=True)
        assert short is not None
        clock.t += 50
        t.end("s1", *short, True, "POST", "/mcp", 200)
    victim = t.admit(_client(2))  # 1,000 s > MAX_CALL_S: its session makes room
    assert victim is not None and victim.sid == "s1"
