"""What a worker's Redis user, made from exactly the rules `worker_rules` prints for a named remote worker serving
`classify` with the blackboard on, may do to the shared keys of its capability: each attempt reported as allowed or
refused (NOPERM). Redis db 9 of 127.0.0.1:6379, a prefix and an ACL user of its own, deleted after.

    PYTHONPATH=src .venv/bin/python bench/worker_rules_attack.py
    PYTHONPATH=<another tree>/src .venv/bin/python bench/worker_rules_attack.py
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dispatch.shared_key_attempts import shared_key_attempts  # noqa: E402 (the test's list of attempts)
from tierwise.dispatch.acl import worker_rules  # noqa: E402
from tierwise.dispatch.keys import Keyspace  # noqa: E402


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
        **shared_key_attempts(w, keys, queue, queue, board),
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
