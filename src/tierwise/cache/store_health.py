"""Whether the answer cache's shared store (Redis, or the sqlite file) answers: `/health`, a metric, one log line
per outage.

A cache whose store fails is a miss, never a failed request. Before (session 24's team-ops left it), an outage
showed only as misses (every answer paid for again, on every replica) and a warning per failed lookup and store:
`/health` said `ok`, no metric told it from a cold cache. Now its first failure is logged once, with what it
means, and its end once, with how long it lasted and how many lookups and stores failed meanwhile; `/health`
reports `answer_cache` (and marks the routes it covers `degraded`: answered, at full price); `/metrics` has
`tierwise_cache_store_up` and `tierwise_cache_store_errors`. As for the budget store (`budgets.store_health`,
whose outage logic this reuses), `/health` probes the store with one expiring write when nothing was heard
from it for 10 s, so an outage is seen, and its end, without traffic.
"""

from __future__ import annotations

import logging
from typing import Any

from tierwise.budgets.store_health import StoreHealth, utc_iso

log = logging.getLogger("tierwise.cache")


class CacheHealth(StoreHealth):
    def __init__(self) -> None:
        super().__init__(fail_open=True)
        self.errors = 0  # failed lookups and stores since start (the metric's counter)

    def failed(self, e: BaseException) -> None:
        self.errors += 1
        super().failed(e)

    def log_down(self) -> None:
        log.warning("cache: the answer cache's store is unavailable (%s): every lookup is a miss and no answer "
                    "is stored until it answers again; /health reports it", self.error)

    def log_up(self, took: float) -> None:
        log.warning("cache: the answer cache's store answers again after %.0fs; %d lookup(s) and store(s) failed "
                    "meanwhile", took, self.affected)

    async def status(self, ping: Any, timeout: float) -> dict[str, Any]:
        await super().status(ping, timeout)
        return self.seen()

    def seen(self) -> dict[str, Any]:
        """The state as the last lookup, store or probe left it (a cache outage refuses nothing: no
        `on_store_error`)."""
        if self.down_since is None:
            return {"status": "ok"}
        return {"status": "unavailable", "since": utc_iso(self.down_since), "error": self.error}
