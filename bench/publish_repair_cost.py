"""What the publishing script's group check (session 37, review37a) costs: Redis's own time per publish (INFO
commandstats, `evalsha` usec_per_call) on a Redis of its own (a private `redis-server`, no persistence), for a queue
whose consumer group exists (the usual case: the check reads XINFO GROUPS) and one without a group
yet. Each figure is the median of `--rounds` rounds of `--calls` publishes; the queue is emptied between rounds.

    PYTHONPATH=src .venv/bin/python bench/publish_repair_cost.py
    PYTHONPATH=/tmp/base_review37a/src .venv/bin/python bench/publish_repair_cost.py   # the session's start
"""

from __future__ import annotations

import argparse
import statistics

import redis
from private_redis import evalsha_usec, private_redis

from tierwise.dispatch.keys import GROUP, Keyspace
from tierwise.dispatch.scripts import ENQUEUE


def measure(r: redis.Redis, calls: int, with_group: bool) -> float:
    r.flushdb()
    keys = Keyspace("bench:", "acme")
    try:
        streams = keys.streams("any", "classify", "app0")
        wake = keys.wake("any", "classify", "app0")
    except TypeError:  # a tree of before per-caller queues
        streams = keys.streams("any", "classify")  # type: ignore[call-arg]
        wake = keys.wake("any", "classify")  # type: ignore[call-arg]
    index = keys.index("any", "classify")
    sec, _ = r.time()
    r.zadd(index, {"w1#secret": (int(sec) + 3600) * 1000})
    listing: list[str] = []
    if hasattr(keys, "listing"):  # (session 38: the indexes of the workers reading the caller's queues, as a worker
        listing = [keys.listing("any", "classify", "app0"), keys.listing_told("any", "classify")]  # puts them)
        for k in listing:
            r.zadd(k, {"w1#secret": (int(sec) + 3600) * 1000})
    if with_group:
        for s in streams:
            r.xgroup_create(s, GROUP, id="0", mkstream=True)
    enqueue = r.register_script(ENQUEUE)
    target = streams[1]
    c0, u0 = evalsha_usec(r)
    for i in range(calls):
        enqueue(keys=[index, target, wake, *streams, *listing], args=[calls + 10, 1000, 60_000, "id", f"t{i}", "reply", "x",
                                                            "p", "{}"])
    c1, u1 = evalsha_usec(r)
    return (u1 - u0) / max(1, c1 - c0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with private_redis() as r:
        for with_group in (True, False):
            runs = [measure(r, a.calls, with_group) for _ in range(a.rounds)]
            print(f"publish, queue {'with' if with_group else 'without'} its group: "
                  f"{statistics.median(runs):.1f} us (Redis), rounds {', '.join(f'{x:.1f}' for x in runs)}")


if __name__ == "__main__":
    main()
