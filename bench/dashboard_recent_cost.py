"""What `/dashboard/api/recent` costs the event loop for a gateway key (its own newest 50 requests), per call, with
the dashboard holding N recent requests, half of them the caller's (and for a key with none of them).

    PYTHONPATH=src .venv/bin/python bench/dashboard_recent_cost.py 2000
    PYTHONPATH=src .venv/bin/python bench/dashboard_recent_cost.py 100000
    PYTHONPATH=<another tree>/src .venv/bin/python bench/dashboard_recent_cost.py 2000   # a tree before session 30
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace as NS
from typing import Any

from tierwise.observability.live import LiveFeed
from tierwise.trace import Step, Trace


def rows_of(feed: LiveFeed, key: str) -> list[dict[str, Any]]:
    def visible(k: str | None) -> bool:
        return k == key

    if hasattr(feed, "by_key"):  # this tree's endpoint (session 36: the key's own index)
        return feed.newest(50, key)
    if hasattr(feed, "newest"):  # sessions 30-35: a walk back from the newest
        return feed.newest(50, visible)  # type: ignore[arg-type]
    return feed.since(0, len(feed.recent), visible)[1][-50:]  # the endpoint before session 30


def per_call_ms(feed: LiveFeed, key: str, calls: int = 20) -> tuple[float, int]:
    t = time.perf_counter()
    for _ in range(calls):
        rows = rows_of(feed, key)
    return (time.perf_counter() - t) / calls * 1e3, len(rows)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    feed = LiveFeed(n)
    tr = Trace("r", "main")
    tr.steps.append(Step("call", "local", ok=True))
    ans = NS(name="local", locality="local")
    for i in range(n):
        feed.add(NS(request_id=f"r{i}", wall=time.time(), route="main", api="openai", stream=False, status=200,
                    error_type="none", latency_ms=1.0, ttft_ms=None, answered=ans, cost=0.0, reference_cost=0.0,
                    trace=tr, steps=tr.steps, key="alice" if i % 2 else "bob"))
    ms, got = per_call_ms(feed, "alice")
    print(f"recent {n}: the caller's own half: {ms:.3f} ms a call ({got} rows)")
    ms, got = per_call_ms(feed, "carol")
    print(f"recent {n}: a key with none of them: {ms:.3f} ms a call ({got} rows)")


if __name__ == "__main__":
    main()
