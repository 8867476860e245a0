"""Circuit breaker per deployment: closed → open after N consecutive failures → half-open
after a cooldown (one probe request at a time) → closed on the probe's success, open again
on its failure. A dead local server then costs one fast check, not a connect timeout, for
every request that could have used it.

Whoever takes the probe slot (`allow()` → True) must end it with `success()`, `failure()` or
`release()` on every way out (see `Deployment`); as a backstop, a probe that has said nothing
for `PROBE_LEASE_S` no longer blocks the next one, so a path that forgot cannot wedge a
deployment for good.

Replicas share breaker state through the blackboard (tierwise.dispatch.blackboard): each
publishes its breakers' states with the time of their last change, and a replica adopts a
peer's newer change with `adopt` — a breaker opened on one replica is open on all of them, and
one that recovered (its probe succeeded) is closed on all of them.

A rate limit (429) is not an outage: the upstream is up and said when to come back. It does not count toward
opening; it holds the deployment for the upstream's Retry-After (`hold`, at most the cooldown; 1 s when it named
none), during which calls fail fast with a 429 that says how long is left, and then it is tried again as before.
With `share_breakers`, replicas share what is left of a hold through the blackboard (`adopt_hold`).
Before, five 429s opened the breaker for the whole cooldown and clients heard 503 "circuit open" for 30 s."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]

PROBE_LEASE_S = 120.0  # longer than a normal answer; a second probe after it is harmless
HOLD_UNSAID_S = 1.0  # a 429 that names no Retry-After: a short pause, not a retry at once


class CircuitBreaker:
    __slots__ = ("failures_to_open", "cooldown", "failures", "opened_at", "probing", "probe_started", "_clock",
                 "on_change", "changed_at", "held_until")

    def __init__(self, failures_to_open: int = 5, cooldown: float = 30.0, clock=time.monotonic,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.probe_started = 0.0
        self._clock = clock
        # Told "open" (closed → open), "open at once" (by a charged unread answer), "reopen" (a probe failed) or
        # "closed" (recovered), once per change.
        self.on_change = on_change
        self.changed_at: float | None = None  # when it last opened or closed (this clock); None: never
        self.held_until = 0.0  # an upstream's 429 said not before then (this clock)

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self._clock() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a request go through now? In half-open state only one probe is let through."""
        st = self.state
        if st == "closed":
            return True
        if st == "half_open" and (not self.probing or self._clock() - self.probe_started > PROBE_LEASE_S):
            self.probing = True
            self.probe_started = self._clock()
            return True
        return False

    def hold(self, retry_after: float | None) -> None:
        """The upstream answered 429: no call before its Retry-After (bounded by the cooldown) has passed. A
        probe that met it hands its slot back (the upstream answered: it is no longer down), and the count of
        consecutive failures is left as it was."""
        wait = HOLD_UNSAID_S if retry_after is None else min(max(0.0, retry_after), self.cooldown)
        self.held_until = max(self.held_until, self._clock() + wait)
        self.probing = False

    def adopt_hold(self, seconds: float) -> None:
        """A peer replica's 429 pause with `seconds` left (bounded by the cooldown): the upstream is rate-limited
        for every replica, so none calls it before then. Unlike `hold`, this replica's own probe is left alone."""
        if seconds > 0:
            self.held_until = max(self.held_until, self._clock() + min(seconds, self.cooldown))

    def held_for(self) -> float:
        """Seconds left of a rate limit's hold (0: none)."""
        return max(0.0, self.held_until - self._clock()) if self.held_until else 0.0

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self.opened_at))

    def success(self) -> None:
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.probing = False
        if was_open:
            self.changed_at = self._clock()
            if self.on_change is not None:
                self.on_change("closed")

    def failure(self, at_once: bool = False) -> None:
        """A call failed; `at_once`: a failure that opens the breaker by itself (a charged unread answer)."""
        self.failures = max(self.failures + 1, self.failures_to_open if at_once else 0)
        if self.probing or self.failures >= self.failures_to_open:
            # Calls already in flight when it opened fail too: they move the cooldown, not the state.
            event = ("open at once" if at_once else "open") if self.opened_at is None else (
                "reopen" if self.probing else None)
            self.opened_at = self._clock()
            if event is not None:
                self.changed_at = self.opened_at
            if event is not None and self.on_change is not None:
                self.on_change(event)
        self.probing = False

    def adopt(self, is_open: bool, retry_in: float = 0.0) -> bool:
        """Take a peer replica's newer state: open with `retry_in` seconds of cooldown left, or closed.
        True when this breaker changed. Told to `on_change` as "shared open" / "shared closed"."""
        now = self._clock()
        if is_open:
            if self.opened_at is not None:
                return False
            self.opened_at = now - max(0.0, self.cooldown - retry_in)
            self.failures = self.failures_to_open
        else:
            if self.opened_at is None:
                return False
            self.opened_at = None
            self.failures = 0
        self.probing = False
        self.changed_at = now
        if self.on_change is not None:
            self.on_change("shared open" if is_open else "shared closed")
        return True

    def release(self) -> None:
        """A probe ended without telling us anything (e.g. the client went away)."""
        self.probing = False
