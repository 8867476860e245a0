"""`tierwise doctor`'s look at distributed mode from a caller's side: whether any worker present reads this config's
queues. Workers read the queues of the callers their `dispatch.callers` lists (default: their own `caller`); a caller
none of them lists publishes without error (the capability's workers are present) and each of its tasks waits out
its timeout, 120 s by default, with nothing saying why (session 37, review37a)."""

from __future__ import annotations

from tierwise.config import Config

MAX_NAMES = 8  # callers named in the warning at most


async def unlisted_caller(cfg: Config) -> str | None:
    """A warning when workers of the tenant are present and none lists this config's `dispatch.caller`; None when
    one does, when none is present, when the records cannot be read (a caller's Redis user may not walk them: the
    dashboard's presence reader may, `observability.dashboard.presence_redis_url`), or when no worker says
    which callers it reads (workers of before session 37's review)."""
    d = cfg.dispatch
    if d is None or d.worker is not None:
        return None
    import redis.asyncio as aredis

    from tierwise.dispatch.keys import Keyspace
    from tierwise.dispatch.presence import records

    url = cfg.observability.dashboard.presence_redis_url or d.redis_url
    client = aredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        found = await records(client, Keyspace(d.prefix, d.tenant))
    except Exception:  # noqa: BLE001 - refused or away: the ping above said what it had to
        return None
    finally:
        await client.aclose()
    saying = [r for r in found if isinstance(r.get("callers"), list)]
    if not saying or any(d.caller in r["callers"] for r in saying):
        return None
    names = sorted({str(c) for r in saying for c in r["callers"]})
    listed = ", ".join(names[:MAX_NAMES]) + (", …" if len(names) > MAX_NAMES else "")
    return (f"dispatch.caller {d.caller!r} is listed by none of the {len(saying)} worker(s) present (their "
            f"dispatch.callers: {listed}): its tasks would wait out their timeout. Add it to the workers' "
            "dispatch.callers (docs/distributed.md)")
