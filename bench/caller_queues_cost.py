"""What per-caller task queues (session 37, dist8) cost a worker: the take script reads one stream per caller,
priority and zone, so a worker that lists K callers (`dispatch.callers`) runs K times the XREADGROUPs per take.

On a Redis of its own (a private `redis-server` on a free port, no persistence: the shared one's statistics move
with every other user), for K callers: Redis's own time per take script call (INFO commandstats, `evalsha`
usec_per_call), for a take that finds nothing (an idle worker's, once per wake-up or `block` seconds) and for one
that takes a task and completes it (the worker's completion script takes the next task in the same call).

    PYTHONPATH=src .venv/bin/python bench/caller_queues_cost.py [--calls 2000] [--callers 1,4,16,64] [--rounds 5]
    PYTHONPATH=/tmp/base_dist8/src .venv/bin/python bench/caller_queues_cost.py --callers 1   # the session's start
"""

from __future__ import annotations

import argparse
import statistics

import redis
from private_redis import evalsha_usec, private_redis

from tierwise.dispatch.config import PRIORITIES
from tierwise.dispatch.keys import GROUP, Keyspace
from tierwise.dispatch.scripts import COMPLETE, TAKE


def measure(r: redis.Redis, callers: int, calls: int) -> tuple[float, float, float | None]:
    r.flushdb()
    keys = Keyspace("bench:", "acme")
    names = [f"app{i}" for i in range(callers)]
    try:
        streams = [keys.stream("any", "classify", p, n) for p in PRIORITIES for n in names]
        wakes = [keys.wake("any", "classify", n) for p in PRIORITIES for n in names]
    except TypeError:  # a tree of before per-caller queues (`--callers 1` only): the same scripts' cost
        assert callers == 1
        streams = [keys.stream("any", "classify", p) for p in PRIORITIES]  # type: ignore[call-arg]
        wakes = [keys.wake("any", "classify") for p in PRIORITIES]  # type: ignore[call-arg]
    for s in streams:
        r.xgroup_create(s, GROUP, id="0", mkstream=True)
    take, complete = r.register_script(TAKE), r.register_script(COMPLETE)
    big = (1 << 20) + 4096  # the largest entry handed out whole (session 38; a tree before it ignores the argument)
    take(keys=streams + wakes, args=[GROUP, "w1", 1, big])  # loaded
    c0, u0 = evalsha_usec(r)
    for _ in range(calls):
        take(keys=streams + wakes, args=[GROUP, "w1", 1, big])
    c1, u1 = evalsha_usec(r)
    idle = (u1 - u0) / max(1, c1 - c0)
    # busy: one task waits in the last caller's low queue (the farthest a take reads); each completion takes the next
    last = streams[-1]
    r.xadd(last, {"id": "t", "reply": "x", "p": "{}"})
    (_, entry, _), = take(keys=streams + wakes, args=[GROUP, "w1", 1, big])
    c0, u0 = evalsha_usec(r)
    for i in range(calls):
        r.xadd(last, {"id": f"t{i}", "reply": "x", "p": "{}"})
        got = complete(keys=[last, keys.done(f"d{i}"), keys.results("app0:1", "any", "classify"), *streams, *wakes],
                       args=[GROUP, entry, f"d{i}", "{}", 60, 1000, 60, "w1", 1, big])
        entry = got[1][0][1]
    c1, u1 = evalsha_usec(r)
    busy = (u1 - u0) / max(1, c1 - c0)
    return idle, busy, bound_cost(r, streams, wakes, calls)


def bound_cost(r: redis.Redis, streams: list[str], wakes: list[str], calls: int) -> float | None:
    """Redis's time per heartbeat's bounding script (session 38, dist9): every queue under its bound, as usual."""
    try:
        from tierwise.dispatch.scripts import BOUND
    except ImportError:  # a tree before it
        return None
    bound = r.register_script(BOUND)
    bound(keys=streams + wakes, args=[1000, 256])
    c0, u0 = evalsha_usec(r)
    for _ in range(calls):
        bound(keys=streams + wakes, args=[1000, 256])
    c1, u1 = evalsha_usec(r)
    return (u1 - u0) / max(1, c1 - c0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--callers", default="1,4,16,64")
    ap.add_argument("--rounds", type=int, default=5, help="each figure is the median of this many rounds")
    a = ap.parse_args()
    with private_redis() as r:
        print("| callers listed | streams per take | idle take (us, Redis) | complete + take next (us, Redis) | "
              "bound, per heartbeat (us, Redis) |")
        print("|---:|---:|---:|---:|---:|")
        for k in [int(x) for x in a.callers.split(",")]:
            runs = [measure(r, k, a.calls) for _ in range(a.rounds)]
            idle, busy = statistics.median(x for x, _, _ in runs), statistics.median(y for _, y, _ in runs)
            bounds = [b for _, _, b in runs if b is not None]
            bound = f"{statistics.median(bounds):.1f}" if bounds else "-"
            print(f"| {k} | {3 * k} | {idle:.1f} | {busy:.1f} | {bound} |")


if __name__ == "__main__":
    main()
