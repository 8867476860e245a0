"""Redis's own time per publish under a named caller's printed rules (caller_rules(..., caller=...)): the publishing
script's prunes of the presence indexes are refused there (pcall), and session 38 (dist9) added two indexes (the
caller's listing and `_told`) to prune and count. On a private `redis-server` (bench/private_redis.py), median of
5 rounds of --calls publishes.

    PYTHONPATH=src:bench .venv/bin/python bench/named_publish_cost.py
    PYTHONPATH=/tmp/base_dist9/src:bench .venv/bin/python bench/named_publish_cost.py   # a tree before dist9
"""

from __future__ import annotations

import argparse
import statistics

import redis
from private_redis import evalsha_usec, private_redis

from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.keys import Keyspace
from tierwise.dispatch.scripts import ENQUEUE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with private_redis() as admin:
        keys = Keyspace("bench:", "acme")
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", *caller_rules("bench:", "acme", caller="app0"))
        r = redis.Redis(port=admin.connection_pool.connection_kwargs["port"], username="app", password="pw")
        sec, _ = admin.time()
        listing = ([keys.listing("any", "classify", "app0"), keys.listing_told("any", "classify")]
                   if hasattr(keys, "listing") else [])
        for k in [keys.index("any", "classify"), *listing]:
            admin.zadd(k, {"w1#secret": (int(sec) + 3600) * 1000})
        streams = keys.streams("any", "classify", "app0")
        enqueue = r.register_script(ENQUEUE)
        runs = []
        for _ in range(a.rounds):
            c0, u0 = evalsha_usec(admin)
            for i in range(a.calls):
                enqueue(keys=[keys.index("any", "classify"), streams[1], keys.wake("any", "classify", "app0"),
                              *streams, *listing], args=[10**9, 256, 60_000, "id", f"t{i}", "reply", "x", "p", "{}"])
            c1, u1 = evalsha_usec(admin)
            runs.append((u1 - u0) / max(1, c1 - c0))
            admin.delete(*streams)
        print(f"named caller's publish: {statistics.median(runs):.1f} us (Redis), rounds "
              f"{', '.join(f'{x:.1f}' for x in runs)}")


if __name__ == "__main__":
    main()
