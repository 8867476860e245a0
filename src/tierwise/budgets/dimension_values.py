"""Bounded state for budgets counted per client-chosen value (a tag, a session, a workflow).

Those values come from the request (a header or `metadata`), so a client inventing a new one per
request would otherwise make a new bucket per request, each kept for the budget's whole window (a
month, for a monthly budget). Each budget keeps at most `cap` distinct values per process; a value
seen again stays its own bucket, a value not seen within its window is forgotten, and once the cap
is reached a new value is counted in one shared bucket (`OVERFLOW`) -- with the budget's own limit,
so inventing values buys a client no extra spend -- until old values expire.

The cap is counted per gateway key (`owner`, the key's name; "" on a gateway without keys): one key
inventing values fills its own share and then spends its own overflow bucket. A cap shared by every key
let one key push every other key's new values into the overflow bucket it had just spent.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

log = logging.getLogger("tierwise.budgets")

OVERFLOW = "#overflow"


class DimensionValues:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        # (budget, key name) -> value -> when it is forgotten; in last-use order, so the oldest is first
        self.seen: dict[tuple[str, str], OrderedDict[str, float]] = {}
        self.overflowed: set[str] = set()

    def bucket_value(self, budget: str, value: str, now: float, keep_s: float, owner: str = "") -> str:
        od = self.seen.get((budget, owner))
        if od is None:
            od = self.seen[(budget, owner)] = OrderedDict()
        if value in od:
            od.move_to_end(value)
            od[value] = now + keep_s
            return value
        while od and next(iter(od.values())) <= now:
            od.popitem(last=False)
        if len(od) >= self.cap:
            if budget not in self.overflowed:
                self.overflowed.add(budget)
                log.warning("budget %s: more than %d distinct values within its window; new ones share one "
                            "bucket (%s) until old ones expire (budgets.max_dimension_values)", budget, self.cap,
                            OVERFLOW)
            return OVERFLOW
        od[value] = now + keep_s
        return value
