"""What a worker's Redis user, made from exactly the rules `worker_rules` prints for a named remote worker serving
`classify` with the blackboard on, may do to the shared keys of its capability: each attempt reported as allowed or
refused (NOPERM). Redis db 9 of 127.0.0.1:6379, a prefix and an ACL user of its own, deleted after.

    PYTHONPATH=src .venv/bin/python bench/worker_rules_attack.py
    PYTHONPATH=<another tree>/src .venv/bin/python bench/worker_rules_attack.py
"""

from __future__ import annotations

import secrets

import redis

from tierwise.dispatch.acl import worker_rules
from tierwise.dispatch.keys import Keyspace


def main() -> None:
    prefix = f"bench-wra-{secrets.token_hex(4)}:"
    keys = Keyspace(prefix, "acme")
    board = prefix + "board:workers:acme"
    admin = redis.Redis(db=9)
    user, pw = f"bench-wra-{secrets.token_hex(4)}", secrets.token_hex(16)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{pw}",
                          *worker_rules(prefix, "acme", "remote", ["classify"], board, "w2", db=9))
    w = redis.Redis(db=9, username=user, password=pw)
    queue, index = keys.stream("any", "classify", "normal"), keys.index("any", "classify")
    attempts = {
        "DEL the task queue": lambda: w.delete(queue),
        "SET the task queue": lambda: w.set(queue, "x"),
        "XADD MAXLEN 0 to the task queue": lambda: w.xadd(queue, {"x": "1"}, maxlen=0),
        "PEXPIRE the task queue": lambda: w.pexpire(queue, 1),
        "DEL the presence index": lambda: w.delete(index),
        "SET the presence index": lambda: w.set(index, "x"),
        "ZREMRANGEBYSCORE -inf +inf on the index": lambda: w.zremrangebyscore(index, "-inf", "+inf"),
        "ZREM another worker from the index": lambda: w.zrem(index, "w1"),
        "PEXPIRE the index": lambda: w.pexpire(index, 1),
        "ZRANGEBYSCORE (member names) of the index": lambda: w.zrangebyscore(index, "-inf", "+inf"),
        "DEL a done mark": lambda: w.delete(keys.done("task_x")),
        "SET the board hash": lambda: w.set(board, "x"),
        "DEL the wake list": lambda: w.delete(keys.wake("any", "classify")),
        "ZADD its own index entry": lambda: w.zadd(index, {"w2": 1}),
        "XREADGROUP its queue": lambda: w.xreadgroup("g", "w2", {queue: ">"}),
    }
    allowed = 0
    try:
        for what, call in attempts.items():
            admin.delete(queue, index, board)
            admin.xadd(queue, {"task": "1"})
            admin.xgroup_create(queue, "g", id="0")
            admin.zadd(index, {"w1": 9e15})
            try:
                call()
                verdict = "allowed"
                allowed += 1
            except redis.exceptions.NoPermissionError:
                verdict = "refused"
            print(f"{verdict:8} {what}")
        print(f"{allowed} of {len(attempts)} allowed")
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        for k in admin.scan_iter(prefix + "*"):
            admin.delete(k)


if __name__ == "__main__":
    main()
