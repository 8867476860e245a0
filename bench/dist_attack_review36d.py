"""Round 7's rules attacked again (session 36, review36d): what each role, logged in with exactly the rules tierwise
prints for it, may still do that reaches past its own work. Each attempt reported as allowed or refused. Redis db 9
of 127.0.0.1:6379, a prefix and ACL users of its own, deleted after. No script that runs long is ever sent: the
foreign Lua returns at once (on the shared Redis, a loop would block everyone).

    PYTHONPATH=src .venv/bin/python bench/dist_attack_review36d.py
    PYTHONPATH=<another tree>/src .venv/bin/python bench/dist_attack_review36d.py
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import redis

from tierwise.dispatch.acl import caller_rules, presence_reader_rules, worker_rules
from tierwise.dispatch.keys import GROUP, Keyspace
from tierwise.dispatch.scripts import ENQUEUE


def main() -> None:
    prefix = f"bench-r36d-{secrets.token_hex(4)}:"
    keys = Keyspace(prefix, "acme")
    admin = redis.Redis(db=9)
    made: list[str] = []

    def user(rules: list[str]) -> redis.Redis:
        name, pw = f"bench-r36d-{secrets.token_hex(4)}", secrets.token_hex(16)
        admin.execute_command("ACL", "SETUSER", name, "on", f">{pw}", *rules)
        made.append(name)
        return redis.Redis(db=9, username=name, password=pw)

    roles = {"worker": user(worker_rules(prefix, "acme", "remote", ["classify"], prefix + "board:workers:acme", "w2",
                                         db=9)),
             "named caller": user(caller_rules(prefix, "acme", "app", db=9)),
             "unnamed caller": user(caller_rules(prefix, "acme", db=9)),
             "presence reader": user(presence_reader_rules(prefix, "acme", db=9))}
    queue, index = keys.stream("any", "classify", "normal"), keys.index("any", "classify")
    admin.xgroup_create(queue, GROUP, id="0", mkstream=True)

    def foreign_lua(c: redis.Redis) -> Any:
        return c.evalsha(c.script_load("return 'ran a script of its own'"), 0)

    attempts: dict[str, Callable[[], Any]] = {f"{role}: SCRIPT LOAD + EVALSHA <sha> 0 of its own Lua":
                                              (lambda c=c: foreign_lua(c)) for role, c in roles.items()}
    attempts.update({f"{role}: EVAL of its own Lua": (lambda c=c: c.eval("return 1", 0)) for role, c in roles.items()})
    w = roles["worker"]
    attempts["worker: XCLAIM … LASTID 9999999999999-0 on its queue"] = lambda: w.execute_command(
        "XCLAIM", queue, GROUP, "w2", 0, "0-1", "LASTID", "9999999999999-0")
    attempts["worker: ZADD its entry at 9e15 (present for ever)"] = lambda: w.zadd(index, {"w2": 9e15})
    allowed = 0
    try:
        for what, call in attempts.items():
            try:
                call()
                allowed += 1
                print(f"ALLOWED  {what}")
            except redis.exceptions.NoPermissionError:
                print(f"refused  {what}")
        # what the last two did to the capability
        admin.xadd(queue, {"id": "later-task"})
        got = admin.xreadgroup(GROUP, "honest", {queue: ">"}, count=1)
        print(f"a task published after: {'handed out' if got else 'never handed out'}")
        enqueue = admin.register_script(ENQUEUE)
        listing = [keys.listing("any", "classify", "caller"), keys.listing_told("any", "classify")]  # (session 38)
        status = enqueue(keys=[index, queue, keys.wake("any", "classify"), *keys.streams("any", "classify"), *listing],
                         args=[1000, 256, 5000, "id", "t", "reply", "r", "p", "{}"])[0]
        print(f"publishing with only the 9e15 entry in the index: {status.decode()}")
        print(f"{allowed} of {len(attempts)} allowed")
    finally:
        admin.delete(queue, index, keys.wake("any", "classify"))
        for name in made:
            admin.acl_deluser(name)


if __name__ == "__main__":
    main()
