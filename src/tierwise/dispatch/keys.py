"""Every Redis key name of distributed mode, in one place.

All keys of a tenant carry the hash tag `{tenant}`, so on Redis Cluster a tenant's streams,
results and worker index live on one shard (the Lua scripts touch several of them at once) and
tenants spread over shards. A task is published to a *zone*: `local` (read only by workers whose
locality is local; tenants' remote workers get no ACL on it) or `any`. The presence keys sit
outside the hash tag, under `<prefix>presence:`, where the dashboard looks for them.

    <p>{<t>}:q:<zone>:<capability>:<priority>   task stream (consumer group GROUP)
    <p>{<t>}:wake:<zone>:<capability>           wake-up tokens for idle workers (list)
    <p>{<t>}:w:<zone>:<capability>              workers present (zset: worker -> expiry, ms)
    <p>{<t>}:dead:<capability>                  dead-letter stream
    <p>{<t>}:r:<caller>                         results for one caller process (stream)
    <p>{<t>}:done:<task>                        completion mark: the dedupe record of a task
    <p>presence:<t>:<worker>                    a worker's presence (JSON, expires)
"""

from __future__ import annotations

from dataclasses import dataclass

from tierwise.dispatch.config import PRIORITIES

GROUP = "tierwise-workers"
ZONES = ("local", "any")


@dataclass(frozen=True, slots=True)
class Keyspace:
    prefix: str
    tenant: str

    @property
    def base(self) -> str:
        return f"{self.prefix}{{{self.tenant}}}:"

    def stream(self, zone: str, capability: str, priority: str) -> str:
        return f"{self.base}q:{zone}:{capability}:{priority}"

    def streams(self, zone: str, capability: str) -> list[str]:
        """The capability's streams in the zone, highest priority first."""
        return [self.stream(zone, capability, p) for p in PRIORITIES]

    def wake(self, zone: str, capability: str) -> str:
        return f"{self.base}wake:{zone}:{capability}"

    def index(self, zone: str, capability: str) -> str:
        return f"{self.base}w:{zone}:{capability}"

    def dead(self, capability: str) -> str:
        return f"{self.base}dead:{capability}"

    def results(self, caller: str) -> str:
        return f"{self.base}r:{caller}"

    def done(self, task_id: str) -> str:
        return f"{self.base}done:{task_id}"

    def is_results_key(self, key: str) -> bool:
        """Whether a task's reply address is a result stream of this tenant (a task names it; a
        worker writes there only if it is)."""
        rest = key[len(self.base) + 2:] if key.startswith(self.base + "r:") else ""
        return 0 < len(rest) <= 64 and all(c.isalnum() or c in "_-" for c in rest)

    def presence(self, worker: str) -> str:
        return f"{self.prefix}presence:{self.tenant}:{worker}"

    def presence_pattern(self) -> str:
        return f"{self.prefix}presence:{self.tenant}:*"
