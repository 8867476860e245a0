"""Redis ACL rules per tenant and role: what a worker or a caller of one tenant may touch.

A tenant's worker may read only its tenant's task streams, and only the `any` zone unless its
locality is local: this is what keeps local-only tasks away from other machines, whatever those
machines' configs claim. A worker may only answer on result streams: its rules give no command on
them; an ACL selector allows the completion script (whose keys include the result stream), and
inside it only XADD and EXPIRE (Redis checks each command a script runs). Redis cannot limit a
command's arguments, so what the selector allows the worker may also do directly (an XADD with
MAXLEN 0 empties a stream, an EXPIRE of 0 deletes it): result streams are therefore per caller
process, zone and capability, and the selector names only those of the worker's own capabilities
and zones. A worker serving `classify` cannot touch the results of other capabilities' tasks, nor
of local-only tasks unless it is local. A caller (a gateway or an application) may publish tasks,
read its tenant's presence index and completion marks, and read results: every caller's of its
tenant, or with `caller` (its `dispatch.caller` name) only its own. `tierwise worker --acl` prints
the `ACL SETUSER` line for a worker's config (`--acl caller`, `--acl presence` the other roles' lines for a
config's `dispatch` section); docs/distributed.md shows all three.
"""

from __future__ import annotations

import hashlib

from tierwise.dispatch import scripts as _scripts
from tierwise.dispatch.config import check_caller, check_name
from tierwise.dispatch.keys import Keyspace, unnamed_tag

# No EVAL and no plain EVALSHA: `EVALSHA <sha> 0` takes no key, so with it in these lists a user under any of the
# printed rules ran any Lua it loaded, and `while true do end` after one write cannot be killed (SCRIPT KILL refuses
# a script that wrote): Redis answered BUSY to every client of every tenant until SHUTDOWN NOSAVE (session 36,
# review36d). Each role may EVALSHA the scripts it runs, by their SHA-1 (`run_scripts`). SCRIPT LOAD stays: redis-py
# loads a script again after a Redis restart, and on Redis 7 loading compiles a script without running it.
CONNECTION = ["+ping", "+hello", "+auth", "+client|setname", "+client|id", "+time", "+script|load",
              "+script|exists"]


def run_scripts(*sources: str) -> list[str]:
    """`+evalsha|<sha1>` for each script (Redis's first-argument rule): the user may run these scripts only. The
    rules change with the scripts' text, so a tierwise upgrade that changes one needs its users' rules printed and
    applied again (the worker and the caller say so when Redis refuses)."""
    return [f"+evalsha|{hashlib.sha1(s.encode()).hexdigest()}" for s in sources]


def script_refused(error: Exception) -> str | None:
    """What to tell a person when Redis refused to run one of tierwise's scripts (NOPERM on EVALSHA): rules
    printed by a version whose scripts differ (they name each script's SHA-1); None for any other refusal."""
    if "'evalsha'" not in str(error):
        return None
    return ("the Redis user may not run this tierwise version's scripts: the ACL rules name each script by its "
            "SHA-1 and these were printed by another version (or written by hand); print them again with "
            "`tierwise worker --acl` (`--acl caller` for a gateway or application) and apply them")


WORKER_SCRIPTS = (_scripts.TAKE, _scripts.RECLAIM, _scripts.COMPLETE, _scripts.DEAD_LETTER, _scripts.KEEPALIVE,
                  _scripts.BOUND)
# What a worker may do, per kind of key, each in a selector of its own (Redis 7): with one command list over every
# key, a worker could DEL or SET any key it may read or write (its capabilities' task queues: every caller's waiting
# tasks and the consumer group gone, or WRONGTYPE for every publish; their presence index; the done marks of every
# task of the tenant; the blackboard's hash), and XADD with MAXLEN 0 or PEXPIRE 1 emptied or deleted a queue or the
# index (session 36, dist7).
# (no XCLAIM: its LASTID moves the group's last-delivered id past every later task; scripts.py KEEPALIVE)
# (XTRIM: the bounding script trims a queue a caller filled past `max_pending` by direct XADDs; a worker that may
# XREADGROUP and XDEL there could empty it anyway)
QUEUE_COMMANDS = ["+xgroup|create", "+xreadgroup", "+xautoclaim", "+xpending", "+xack", "+xdel", "+xlen", "+xtrim"]
WAKE_COMMANDS = ["+blpop", "+ltrim"]
# The presence index: a worker adds or renews its own entry, removes it when it stops, and reads nothing (no member
# name to aim at). Expired entries are pruned by the publishing script, not by workers: ZREMRANGEBYSCORE, DEL and
# PEXPIRE each let one worker empty the index, and every caller got NoWorker until the others' next heartbeat. ZREM
# names the members it removes, and an entry's name holds a secret of its worker's process (presence.py): a worker
# can remove its own only (since session 37; before, ZREM of the others' ids emptied the index too).
INDEX_COMMANDS = ["+zadd", "+zrem"]
DONE_COMMANDS = ["+set", "+exists"]  # the completion script's SET NX of a task's mark
PRESENCE_COMMANDS = ["+set", "+del"]  # its own record (with `worker_id`)
DEAD_COMMANDS = ["+xadd"]
# What a worker may do to a result stream of its own capabilities and zones: the completion script adds the result
# and renews the stream's expiry. No read of any kind.
ANSWER_COMMANDS = ["+xadd", "+expire"]
# A worker with the blackboard on publishes its statistics into one hash (the exchange script, which also counts
# and measures the hash before reading it: without `hlen` every exchange of a worker under these rules failed,
# NOPERM, and its queue depth never reached the gateways; session 35). The script drops an oversized hash (DEL)
# and renews its expiry.
BOARD_COMMANDS = ["+hset", "+hgetall", "+hdel", "+hlen", "+memory|usage", "+del", "+pexpire"]
# (ZREMRANGEBYSCORE: the publishing script prunes the presence index's expired entries; this user may DEL the
# index anyway)
# (XINFO GROUPS and XGROUP SETID: the publishing script puts back a group made ahead of its queue's last id)
REPAIR_COMMANDS = ["+xinfo|groups", "+xgroup|setid"]
CALLER_COMMANDS = ["+xadd", "+xlen", "+zcount", "+zrangebyscore", "+zremrangebyscore", "+lpush", "+ltrim", "+xread",
                   "+xrange", "+xdel", "+exists", "+del", "+expire", *REPAIR_COMMANDS]
# A named caller, each kind of key in a selector of its own. Its task queues and wake lists are its own
# (`q:…:<caller>`, keys.py): it publishes, withdraws (XDEL) and, after an outage, looks for and publishes again its
# own tasks there. On queues shared by the tenant's callers, the XADD that publishing takes let one caller empty
# the others' waiting tasks (`XADD … MAXLEN 0`) or stop every later publish (an XADD of the largest id,
# 18446744073709551615-18446744073709551615); and with one command list over every key, LPUSH made a queue not
# created yet a list and XADD a wake list a stream (WRONGTYPE for every publish of every caller) (session 37, dist8).
# Redis functions do not help: a function's commands are checked against the calling user's rules like a script's.
OWN_QUEUE_COMMANDS = ["+xadd", "+xlen", "+xdel", "+xrange", "+exists", *REPAIR_COMMANDS]
OWN_WAKE_COMMANDS = ["+lpush", "+ltrim"]
# The presence index is only counted (no ZREMRANGEBYSCORE: with it one application could empty the index, every
# caller then refused with NoWorker; under these rules the publishing script's prune is refused and expired entries
# stay, uncounted)
INDEX_READ_COMMANDS = ["+zcount"]
# ... and reading, renewing and deleting its own result streams and inbox only.
RESULT_COMMANDS = ["+xread", "+xadd", "+xdel", "+del", "+expire", "+exists"]


def url_db(url: str) -> int:
    """The database number a redis URL selects (path `/n` or `?db=n`; 0 when it names none)."""
    from redis.connection import parse_url

    return int(parse_url(url).get("db") or 0)


def connection(db: int) -> list[str]:
    """The connection commands, and on a database other than 0 `SELECT` of that one only: redis-py sends
    `SELECT n` when a URL names database n, and without it a worker logged in with its printed rules on
    `redis://…/7` had every command refused (its log blamed the zones; session 35, newuser35b)."""
    return [*CONNECTION, f"+select|{int(db)}"] if db else list(CONNECTION)


def glob_escaped(key: str) -> str:
    """A key name as an ACL pattern matching that key only: `blackboard.key_prefix` may hold `*`, `?` or `[`
    (only spaces are refused), which made the printed pattern reach other keys with the worker's commands."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in key)


def worker_rules(prefix: str, tenant: str, locality: str, capabilities: list[str] | None = None,
                 board_key: str | None = None, worker_id: str | None = None, db: int = 0) -> list[str]:
    """With `capabilities` (what the worker's config serves), only those capabilities' streams: a
    compromised worker then cannot read the prompts of the tenant's other capabilities' tasks.
    With `board_key` (the blackboard's hash, when the worker publishes statistics) that key too.
    With `worker_id` (`dispatch.worker.id`) only that worker's own presence record: with the tenant's whole
    presence prefix, one worker could plant thousands of records (the dashboard and `--list` read at most 500:
    the real workers hidden) and delete the others' (session 35, review35d)."""
    k = Keyspace(prefix, tenant)
    zones = ["any", "local"] if locality == "local" else ["any"]
    caps = ["*"] if capabilities is None else sorted(capabilities)
    queues = [f"~{k.base}q:{zone}:{cap}:*" for zone in zones for cap in caps]
    wakes = [f"~{k.base}wake:{zone}:{cap}:*" for zone in zones for cap in caps]  # (`*`: each caller's)
    # (`:*`: the indexes of the callers it reads, and of the workers that say whom they read; keys.py)
    index = [f"~{k.base}w:{zone}:{cap}{tail}" for zone in zones for cap in caps for tail in ("", ":*")]
    dead = [f"~{k.base}dead:{cap}" for cap in caps]
    done = [f"~{k.base}done:*"]
    # Without an id: the records of workers of this locality and these capabilities (keys.unnamed_tag); without
    # capabilities either (every capability's queues), every record of the tenant.
    if worker_id is not None:
        own_record = check_name(worker_id, "worker id")
    else:
        own_record = "*" if capabilities is None else f"{unnamed_tag(locality, capabilities)}-*"
    presence = [f"~{prefix}presence:{tenant}:{own_record}"]
    # `*` is the caller process (`<name>:<instance>`); names hold no `:`, so the pattern reaches no other
    # capability's or zone's result stream
    results = [f"~{k.base}r:*:{zone}:{cap}" for zone in zones for cap in caps]
    board = [f"~{glob_escaped(board_key)}"] if board_key else []

    def selector(commands: list[str], keys: list[str]) -> str:
        return "(" + " ".join([*commands, *keys]) + ")"

    # Redis checks the keys of EVALSHA in one selector, then each command the script runs on its own
    from tierwise.dispatch.blackboard_redis import SCRIPT as BOARD_SCRIPT

    own = run_scripts(*WORKER_SCRIPTS, *([BOARD_SCRIPT] if board_key else []))
    scripts = selector(own, [*queues, *wakes, *dead, *done, *results, *board])
    parts = [selector(QUEUE_COMMANDS, queues), selector(WAKE_COMMANDS, wakes), selector(INDEX_COMMANDS, index),
             selector(DEAD_COMMANDS, dead), selector(DONE_COMMANDS, done), selector(PRESENCE_COMMANDS, presence),
             selector(ANSWER_COMMANDS, results), scripts]
    if board_key:
        parts.append(selector(BOARD_COMMANDS, board))
    return ["resetkeys", "resetchannels", "-@all", *connection(db), "clearselectors", *parts]


def caller_rules(prefix: str, tenant: str, caller: str | None = None, db: int = 0) -> list[str]:
    """With `caller` (the `dispatch.caller` name of the gateways or applications that log in as this user) the
    user reaches only that caller's result streams, task queues and wake lists (keys.py), counts the presence index
    and reads completion marks: another caller of the tenant can neither read its answers or its prompts, nor
    delete, trim or block its queued tasks (tests/dispatch/test_caller_queue_attacks.py). Workers read the queues of
    the callers their config lists (`dispatch.callers`)."""
    k = Keyspace(prefix, tenant)
    publish = run_scripts(_scripts.ENQUEUE)
    # The presence index is read inside the publishing script, and Redis checks a script's keys for
    # read and write alike: so `~` on it, where `%R~` (read only) would do for plain commands.
    if caller is None:
        keys = [f"~{k.base}q:*", f"~{k.base}wake:*", f"~{k.base}r:*", f"~{k.base}w:*", f"%R~{k.base}done:*"]
        return ["resetkeys", "resetchannels", "-@all", *connection(db), *CALLER_COMMANDS, *publish, *keys]
    name = check_caller(caller)
    # (names hold no `:`: `q:*:<name>` reaches no other caller's queue.) One `*` per part of the key: with
    # `wake:*:<name>` a caller named like a capability reached the shared wake list of before session 37
    # (`wake:<zone>:<cap>`), which workers of that version wait on during an upgrade (session 38, dist9).
    queues, wakes, index = f"~{k.base}q:*:*:*:{name}", f"~{k.base}wake:*:*:{name}", f"~{k.base}w:*"
    results, done = f"~{k.base}r:{name}:*", f"%R~{k.base}done:*"

    def selector(commands: list[str], keys: list[str]) -> str:
        return "(" + " ".join([*commands, *keys]) + ")"

    # Redis checks the keys of EVALSHA in one selector (read and write alike), then each command the script runs
    return ["resetkeys", "resetchannels", "-@all", *connection(db), *publish, queues, wakes, index, "clearselectors",
            selector(OWN_QUEUE_COMMANDS, [queues]), selector(OWN_WAKE_COMMANDS, [wakes]),
            selector(INDEX_READ_COMMANDS, [f"%R{index}"]), selector(["+exists"], [done]),
            selector(RESULT_COMMANDS, [results])]


# What reading a tenant's presence records takes (observability/topology.py: the SCAN script, then TYPE and TTL,
# STRLEN or HSTRLEN, GET or HMGET), for the dashboard's `presence_redis_url` and `tierwise worker --list`.
PRESENCE_READ_COMMANDS = ["+scan", "+type", "+ttl", "+strlen", "+hstrlen", "+get", "+hmget"]


def presence_reader_rules(prefix: str, tenant: str, db: int = 0) -> list[str]:
    """A user that reads one tenant's presence records and nothing else: neither the caller's nor a worker's rules
    allow a walk of the presence keys, so a gateway logged in with caller rules showed no workers on its dashboard
    (`presence source unavailable (NoPermissionError)`) and a worker's user could not `--list` (session 35,
    newuser35b). SCAN takes no key, so Redis cannot limit which names it returns: this user can list the names of
    every key in the database (not read them)."""
    from tierwise.observability.topology import _SCAN_SHORT

    return ["resetkeys", "resetchannels", "-@all", *connection(db), *PRESENCE_READ_COMMANDS,
            *run_scripts(_SCAN_SHORT), f"%R~{glob_escaped(prefix + 'presence:' + tenant + ':')}*"]


def setuser(user: str, rules: list[str], password_placeholder: str = "<password>") -> str:
    """The ACL SETUSER line for redis-cli (a selector, which holds spaces, in double quotes)."""
    words = [f'"{r}"' if " " in r else r for r in rules]
    return " ".join(["ACL SETUSER", user, "on", f">{password_placeholder}", *words])
