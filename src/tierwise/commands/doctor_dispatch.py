"""`tierwise doctor`'s look at distributed mode from a caller's side: whether the workers present that serve this
config's capabilities read its queues. Workers read the queues of the callers their `dispatch.callers` lists
(default: their own `caller`); a caller none of them lists publishes without error (the capability's workers are
present) and each of its tasks waits out its timeout, 120 s by default, with nothing saying why (session 37,
review37a). Listed by some of a capability's workers only, its tasks go to those alone (session 37, newuser37b)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `tierwise --help` imports every command module: no pydantic at help time
    from tierwise.config import Config

MAX_NAMES = 8  # callers or workers named in a warning at most


def _names(items: Any) -> str:
    names = sorted({str(c) for c in items})
    return ", ".join(names[:MAX_NAMES]) + (", …" if len(names) > MAX_NAMES else "")


def dispatched(cfg: Config) -> list[str]:
    """The capabilities this config's routes dispatch to (inline targets are routes `capability:<name>` by now)."""
    return sorted({str(pc.capability) for pc in cfg.routes.values()
                   if getattr(pc, "policy", None) == "capability" and getattr(pc, "capability", None)})


def caller_warnings(caller: str, capabilities: list[str], found: list[dict[str, Any]], tenant: str = "",
                    max_pending: int | None = None) -> list[str]:
    """Warnings for `caller` given the presence records `found`: per capability the config dispatches to (the whole
    tenant's workers when it names none), no worker serves it (with `tenant`), none of its workers lists the caller,
    or only some do; with `max_pending` (the caller's), those listing it that trim its queues to fewer tasks (their
    own `max_pending`, in their records since session 38: a caller may XADD past its bound, so workers trim)."""
    saying = [r for r in found if isinstance(r.get("callers"), list)]
    groups = [(c, [r for r in saying if c in (r.get("capabilities") or [])]) for c in capabilities] or [("", saying)]
    out = [f"no worker present serves capability {c!r} for tenant {tenant!r}: the routes dispatching to it answer 503 "
           "'no worker serves capability' until one starts (`tierwise worker --list` lists those present)"
           for c in capabilities if tenant and not any(c in (r.get("capabilities") or []) for r in found)]
    for cap, workers in groups:
        if not workers:
            continue
        where = f" for capability {cap!r}" if cap else ""
        listing = [r for r in workers if caller in r["callers"]]
        if not listing:
            out.append(f"dispatch.caller {caller!r} is listed by none of the {len(workers)} worker(s) present{where} "
                       f"(their dispatch.callers: {_names(c for r in workers for c in r['callers'])}): its tasks "
                       "are refused (503, 'none lists caller'). Add it to the workers' dispatch.callers "
                       "(docs/distributed.md)")
        elif len(listing) < len(workers):
            missing = [r.get("id", "?") for r in workers if caller not in r["callers"]]
            out.append(f"dispatch.caller {caller!r} is listed by {len(listing)} of the {len(workers)} worker(s) "
                       f"present{where}; not by {_names(missing)}: its tasks go to the others only. Add it to "
                       "those workers' dispatch.callers (docs/distributed.md)")
        low = [r for r in listing if max_pending is not None and isinstance(r.get("max_pending"), int)
               and not isinstance(r.get("max_pending"), bool) and r["max_pending"] < max_pending]
        if low:
            out.append(f"dispatch.max_pending {max_pending} is more than that of worker(s) "
                       f"{_names(r.get('id', '?') for r in low)} reading caller {caller!r}{where} "
                       f"({min(r['max_pending'] for r in low)}): each heartbeat they trim each of its queues to theirs, "
                       "the oldest tasks first. Raise theirs or lower this one")
    return out


async def unlisted_caller(cfg: Config) -> list[str]:
    """Warnings when workers of the tenant are present and none, or not all, of those serving a capability this
    config dispatches to list its `dispatch.caller`; none when no worker is present, when the records cannot be
    read (a caller's Redis user may not walk them: the dashboard's presence reader may,
    `observability.dashboard.presence_redis_url`), or when no worker says which callers it reads (workers of
    before session 37's review)."""
    d = cfg.dispatch
    if d is None or d.worker is not None:
        return []
    import redis.asyncio as aredis

    from tierwise.dispatch.keys import Keyspace
    from tierwise.dispatch.presence import records

    url = cfg.observability.dashboard.presence_redis_url or d.redis_url
    client = aredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        found = await records(client, Keyspace(d.prefix, d.tenant))
    except Exception:  # noqa: BLE001 - refused or away: the ping above said what it had to
        return []
    finally:
        await client.aclose()
    return caller_warnings(d.caller, dispatched(cfg), found, d.tenant, d.max_pending)
