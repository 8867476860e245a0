"""Whether the budget store answers, as the requests and `/health` see it, and one log line per outage.

A Redis budget store that stops answering (stopped, frozen, out of memory) refuses every request the budgets and
rate limits cover (`fail_closed`) or lets them through uncounted (`fail_open`). Before, `/health` said `ok` on
every replica throughout, and `fail_closed` logged a warning per refused request (≈780 per replica in a 30-second
outage at 50 clients, beside each request's own failure line, which stays: docs/operations.md, "The console"). Now the first failure of an outage is logged once, with what it means, and its
end once, with how long it lasted and how many requests it refused; `/health` reports the store and marks the
routes it covers.

With no traffic nothing would notice an outage or its end, so `/health` probes the store when nothing was heard
from it for `FRESH_S` (one probe at a time, ended by the store's own `timeout`; waited `PROBE_SLACK_S` longer
at most): a write of one expiring key
under the prefix, so that a Redis out of memory under `noeviction`, which answers PING but refuses every
admission, is not reported `ok`.

The answer cache's store (`cache.store_health.CacheHealth`) is watched the same way, with its own lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger("tierwise.budgets")

FRESH_S = 10.0  # a store answer (or failure) this recent speaks for the store without a ping
# How much longer than the store's own timeout `/health` waits for its probe. The probe ends at that timeout (a
# Redis socket timeout, sqlite's busy timeout) by itself; this only bounds a probe that hangs past it. It was 0.1 s:
# on a loaded machine (load 12-20 on 2 cores) a sqlite probe meeting a locked file, which gives up after its 0.5 s,
# ended after `/health` had stopped waiting, and `/health` said `ok`.
PROBE_SLACK_S = 5.0


def utc_iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class StoreHealth:
    def __init__(self, fail_open: bool, clock: Any = time.time) -> None:
        self.fail_open = fail_open
        self._clock = clock
        self.down_since: float | None = None  # wall time of the outage's first failure; None while it answers
        self.error = ""
        self.affected = 0  # requests refused (fail_closed) or let through uncounted (fail_open) in this outage
        self.heard = 0.0  # monotonic time of the last answer or failure
        self._ping: asyncio.Task[bool] | None = None

    def failed(self, e: BaseException) -> None:
        """A store call failed (the caller refused or let its request through)."""
        self.heard = time.monotonic()
        self.affected += 1
        if self.down_since is None:
            self.down_since = self._clock()
            self.error = type(e).__name__
            self.log_down()

    def log_down(self) -> None:
        what = ("letting the requests budgets and rate limits cover through WITHOUT counting them (on_store_error: "
                "fail_open)") if self.fail_open else \
            ("refusing every request budgets and rate limits cover with 503 (on_store_error: fail_closed)")
        log.warning("budgets: the budget store is unavailable (%s): %s until it answers again; /health reports "
                    "it", self.error, what)

    def log_up(self, took: float) -> None:
        log.warning("budgets: the budget store answers again after %.0fs; %d request(s) were %s meanwhile",
                    took, self.affected, "let through uncounted" if self.fail_open else "refused")

    def answered(self) -> None:
        """A store call succeeded: the end of an outage, if one was on."""
        self.heard = time.monotonic()
        if self.down_since is not None:
            self.log_up(self._clock() - self.down_since)
            self.down_since = None
            self.affected = 0

    async def status(self, ping: Any, timeout: float) -> dict[str, Any]:
        """`/health`'s view: probes the store (`ping`, an async callable) when nothing was heard for FRESH_S."""
        if time.monotonic() - self.heard >= FRESH_S:
            if self._ping is None or self._ping.done():
                self._ping = asyncio.ensure_future(self._probe(ping))
            await asyncio.wait([self._ping], timeout=timeout + PROBE_SLACK_S)
        if self.down_since is None:
            return {"status": "ok"}
        return {"status": "unavailable", "since": utc_iso(self.down_since), "error": self.error,
                "on_store_error": "fail_open" if self.fail_open else "fail_closed"}

    async def _probe(self, ping: Any) -> bool:
        try:
            await ping()
        except Exception as e:  # unreachable, timed out, refused
            self.heard = time.monotonic()
            if self.down_since is None:
                self.failed(e)
                self.affected = 0  # (a ping is no request)
            return False
        self.answered()
        return True
