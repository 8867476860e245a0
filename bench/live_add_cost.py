"""What `LiveFeed.add` (the dashboard's record of each finished request, at the end of every request when the dashboard is
on) costs per request: recent 2000, 8 keys, best of 5 passes of 200,000 records.

    PYTHONPATH=src .venv/bin/python bench/live_add_cost.py
    PYTHONPATH=<another tree>/src .venv/bin/python bench/live_add_cost.py
"""

from __future__ import annotations

import time
from types import SimpleNamespace as NS

from tierwise.observability.live import LiveFeed
from tierwise.trace import Step, Trace

tr = Trace("r", "main")
tr.steps.append(Step("call", "local", ok=True))
ans = NS(name="local", locality="local")
recs = [NS(request_id=f"r{i}", wall=time.time(), route="main", api="openai", stream=False, status=200, error_type="none",
           latency_ms=1.0, ttft_ms=None, answered=ans, cost=0.0, reference_cost=0.0, trace=tr, steps=tr.steps,
           key=f"k{i % 8}") for i in range(200_000)]
best = 9
for _ in range(5):
    feed = LiveFeed(2000)
    t = time.perf_counter()
    for r in recs:
        feed.add(r)
    best = min(best, (time.perf_counter() - t) / len(recs) * 1e6)
print(f"LiveFeed.add, recent 2000, 8 keys: {best:.3f} us a request (best of 5 x 200,000)")
