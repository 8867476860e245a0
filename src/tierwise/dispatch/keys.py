"""Every Redis key name of distributed mode, in one place.

All keys of a tenant carry the hash tag `{tenant}`, so on Redis Cluster a tenant's streams,
results and worker index live on one shard (the Lua scripts touch several of them at once) and
tenants spread over shards. Task queues and wake lists are per caller (`dispatch.caller`): publishing takes XADD
on the queue, and Redis cannot limit XADD's arguments, so on a queue shared by callers one caller's
`XADD … MAXLEN 0` emptied the others' waiting tasks and an XADD of the largest id made every later publish fail
(session 37, dist8). A caller's ACL user reaches only its own queues; workers read the queues of the callers
their config names (`dispatch.callers`). A task is published to a *zone*: `local` (read only by workers whose
locality is local; tenants' remote workers get no ACL on it) or `any`. The presence keys sit
outside the hash tag, under `<prefix>presence:`, where the dashboard looks for them.

Results come back on one stream per caller process, zone and capability: a worker's ACL lets it add to
the result streams of its own capabilities and zones only (`r:*:<zone>:<capability>`), so it cannot
trim, expire or write into those of the tasks it may not take. `<caller>` is the caller's configured
name (`dispatch.caller`; a caller's ACL user can be limited to `r:<caller>:*`), `<inst>` a random id
per process.

    <p>{<t>}:q:<zone>:<capability>:<priority>:<caller>  task stream (consumer group GROUP)
    <p>{<t>}:wake:<zone>:<capability>:<caller>  wake-up tokens for idle workers (list)
    <p>{<t>}:w:<zone>:<capability>              workers present (zset: worker -> expiry, ms)
    <p>{<t>}:w:<zone>:<capability>:<caller>     those of them reading that caller's queues (the same entries)
    <p>{<t>}:w:<zone>:<capability>:_told        those of them that say whose queues they read
    <p>{<t>}:dead:<capability>                  dead-letter stream
    <p>{<t>}:r:<caller>:<inst>                  a caller process's inbox: wakes its result reader (stream)
    <p>{<t>}:r:<caller>:<inst>:<zone>:<capability>  that process's results of one capability and zone (stream)
    <p>{<t>}:done:<task>                        completion mark: the dedupe record of a task
    <p>presence:<t>:<worker>                    a worker's presence (JSON, expires)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tierwise.dispatch.config import PRIORITIES
from tierwise.dispatch.scripts import GROUP as GROUP  # (its users import it from here)

DEFAULT_CALLER = "caller"  # `dispatch.caller`'s default
ZONES = ("local", "any")
_CALLER_PART = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


def unnamed_tag(locality: str, capabilities: list[str]) -> str:
    """What the id of a worker without `dispatch.worker.id` starts with (`<tag>-<host>-<pid>`), and what its printed
    ACL confines its presence records to: the tenant's whole presence prefix let such a worker overwrite and delete
    every worker's record (session 37, dist8). Workers of one locality and set of capabilities share it (and the
    printed user): they may touch each other's records, no one else's."""
    digest = hashlib.sha1(f"{locality}:{','.join(sorted(capabilities))}".encode()).hexdigest()[:10]
    return f"u{digest}"


@dataclass(frozen=True, slots=True)
class Keyspace:
    prefix: str
    tenant: str

    @property
    def base(self) -> str:
        return f"{self.prefix}{{{self.tenant}}}:"

    def stream(self, zone: str, capability: str, priority: str, caller: str = DEFAULT_CALLER) -> str:
        """`caller` is the caller's configured name (`dispatch.caller`), not its process id."""
        return f"{self.base}q:{zone}:{capability}:{priority}:{caller}"

    def streams(self, zone: str, capability: str, caller: str = DEFAULT_CALLER) -> list[str]:
        """The caller's streams of the capability in the zone, highest priority first."""
        return [self.stream(zone, capability, p, caller) for p in PRIORITIES]

    def wake(self, zone: str, capability: str, caller: str = DEFAULT_CALLER) -> str:
        return f"{self.base}wake:{zone}:{capability}:{caller}"

    def legacy_stream(self, zone: str, capability: str, priority: str) -> str:
        """A queue of before session 37, shared by the tenant's callers: workers drain what an upgrade left there."""
        return f"{self.base}q:{zone}:{capability}:{priority}"

    def stream_parts(self, stream: str) -> tuple[str, str, str, str]:
        """(zone, capability, priority, caller) of a task stream's key (caller `""`: a `legacy_stream`)."""
        zone, cap, priority, *caller = stream[len(self.base) + 2:].split(":")
        return zone, cap, priority, caller[0] if caller else ""

    def index(self, zone: str, capability: str) -> str:
        return f"{self.base}w:{zone}:{capability}"

    def listing(self, zone: str, capability: str, caller: str) -> str:
        """The presence index of the workers that read `caller`'s queues of the capability in the zone."""
        return f"{self.base}w:{zone}:{capability}:{caller}"

    def listing_told(self, zone: str, capability: str) -> str:
        """The presence index of the workers that say whom they read (`listing`; since session 38): a worker of
        before says nothing, and while one is present a caller missing from every listing may still be read.
        (`_told` starts no caller's name: names start with a letter or digit)"""
        return f"{self.base}w:{zone}:{capability}:_told"

    def dead(self, capability: str) -> str:
        return f"{self.base}dead:{capability}"

    def inbox(self, caller: str) -> str:
        """A caller process's own stream (`caller` is `<name>:<instance>`): nothing but the caller writes it."""
        return f"{self.base}r:{caller}"

    def results(self, caller: str, zone: str, capability: str) -> str:
        return f"{self.base}r:{caller}:{zone}:{capability}"

    def done(self, task_id: str) -> str:
        return f"{self.base}done:{task_id}"

    def is_results_key(self, key: str, zone: str, capability: str, caller: str = "") -> bool:
        """Whether a task's reply address is a result stream of this tenant for the capability and zone the task
        was published to (a task names it; a worker writes there only if it is), and with `caller` (the caller whose
        queue the task came from; `""`: a shared queue of before session 37) one of that caller's: a caller may XADD
        its own queues directly, and its tasks named another caller's result streams, any instance, for workers to
        fill (session 38, dist9)."""
        head, tail = self.base + "r:", f":{zone}:{capability}"
        if not key.startswith(head) or not key.endswith(tail) or len(key) <= len(head) + len(tail):
            return False
        parts = key[len(head):-len(tail)].split(":")
        if caller and parts[0] != caller:
            return False
        return len(parts) <= 2 and all(_CALLER_PART.match(p) for p in parts)

    def presence(self, worker: str) -> str:
        return f"{self.prefix}presence:{self.tenant}:{worker}"

    def presence_pattern(self) -> str:
        return f"{self.prefix}presence:{self.tenant}:*"
