"""Redis ACL rules per tenant and role: what a worker or a caller of one tenant may touch.

A tenant's worker may read only its tenant's task streams, and only the `any` zone unless its
locality is local: this is what keeps local-only tasks away from other machines, whatever those
machines' configs claim. A caller (a gateway or an application) may publish tasks, read its
tenant's presence index and completion marks, and read results. `tierwise worker --acl` prints
the `ACL SETUSER` line for a worker's config; docs/distributed.md shows both roles.
"""

from __future__ import annotations

from tierwise.dispatch.keys import Keyspace

CONNECTION = ["+ping", "+hello", "+auth", "+client|setname", "+client|id", "+time",
              "+evalsha", "+eval", "+script|load", "+script|exists"]
WORKER_COMMANDS = ["+blpop", "+xgroup|create", "+xreadgroup", "+xautoclaim", "+xpending", "+xclaim", "+xack",
                   "+xdel", "+xadd", "+set", "+exists", "+zadd", "+zrem", "+zremrangebyscore", "+zrangebyscore",
                   "+pexpire", "+expire", "+del", "+lpush", "+ltrim", "+xlen"]
# A worker with the blackboard on publishes its statistics into one hash (the exchange script).
BOARD_COMMANDS = ["+hset", "+hgetall", "+hdel"]
CALLER_COMMANDS = ["+xadd", "+xlen", "+zcount", "+zrangebyscore", "+lpush", "+ltrim", "+xread", "+xrange", "+xdel",
                   "+exists", "+del", "+expire"]


def worker_rules(prefix: str, tenant: str, locality: str, capabilities: list[str] | None = None,
                 board_key: str | None = None) -> list[str]:
    """With `capabilities` (what the worker's config serves), only those capabilities' streams: a
    compromised worker then cannot read the prompts of the tenant's other capabilities' tasks.
    With `board_key` (the blackboard's hash, when the worker publishes statistics) that key too."""
    k = Keyspace(prefix, tenant)
    zones = ["any", "local"] if locality == "local" else ["any"]
    caps = ["*"] if capabilities is None else sorted(capabilities)
    keys = [f"~{k.base}q:{zone}:{cap}:*" for zone in zones for cap in caps]
    keys += [f"~{k.base}{part}:{zone}:{cap}" for zone in zones for part in ("wake", "w") for cap in caps]
    keys += [f"~{k.base}dead:{cap}" for cap in caps]
    keys += [f"~{k.base}r:*", f"~{k.base}done:*", f"~{prefix}presence:{tenant}:*"]
    board = [*BOARD_COMMANDS, f"~{board_key}"] if board_key else []
    return ["resetkeys", "resetchannels", "-@all", *CONNECTION, *WORKER_COMMANDS, *board, *keys]


def caller_rules(prefix: str, tenant: str) -> list[str]:
    k = Keyspace(prefix, tenant)
    # The presence index is read inside the publishing script, and Redis checks a script's keys for
    # read and write alike: so `~` on it, where `%R~` (read only) would do for plain commands.
    keys = [f"~{k.base}q:*", f"~{k.base}wake:*", f"~{k.base}r:*", f"~{k.base}w:*", f"%R~{k.base}done:*"]
    return ["resetkeys", "resetchannels", "-@all", *CONNECTION, *CALLER_COMMANDS, *keys]


def setuser(user: str, rules: list[str], password_placeholder: str = "<password>") -> str:
    return " ".join(["ACL SETUSER", user, "on", f">{password_placeholder}", *rules])
