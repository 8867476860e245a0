"""What each route leads to: the models and routes its config names, and the models it can reach.

Used by `tierwise models` (what a route is made of) and `/health` (a route is down when none of
the models it can reach is available). Reads the config only; cycles are refused at load time,
but the walk guards against them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tierwise.config import Config
from tierwise.policies.registry import POLICY_TYPES


def leads_to(cfg: Config, route: str) -> list[str]:
    """The models and routes `route`'s config names, in the order it names them (no repeats)."""
    pc = cfg.routes.get(route)
    if pc is None:
        return []
    ptype = POLICY_TYPES.get(getattr(pc, "policy", ""))
    refs = ptype.references(pc) if ptype is not None else []
    return list(dict.fromkeys(refs))


def models_of(cfg: Config, route: str) -> list[str]:
    """Every model `route` can reach, through the routes it names, in first-seen order."""
    out: dict[str, None] = {}
    seen: set[str] = set()
    todo = [route]
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name in cfg.models:
            out[name] = None
        else:
            todo.extend(leads_to(cfg, name))
    return list(out)


def route_health(cfg: Config, available: Callable[[str], bool]) -> dict[str, dict[str, Any]]:
    """Per route: `ok` (every model it reaches is available), `degraded` (some are) or `down` (none),
    with the unavailable models named."""
    out: dict[str, dict[str, Any]] = {}
    for route in cfg.routes:
        models = models_of(cfg, route)
        unavailable = [m for m in models if not available(m)]
        status = "ok" if not unavailable else ("down" if len(unavailable) == len(models) else "degraded")
        out[route] = {"status": status, "unavailable": unavailable} if unavailable else {"status": status}
    return out


def overall(statuses: list[str]) -> str:
    """The gateway's status from its routes' (or its models' when it has no routes)."""
    if not statuses or all(s == "ok" for s in statuses):
        return "ok"
    return "down" if all(s == "down" for s in statuses) else "degraded"


def without_an_answer(cfg: Config, dead_providers: set[str]) -> list[str]:
    """What `serve` says after naming providers that cannot answer (a key not set, nothing listening): which
    routes then have no target that can answer (each request to them fails), and which fall back.
    Before, every such provider's line said "routes fall back to other targets", also when there were none."""
    if not dead_providers:
        return []
    health = route_health(cfg, lambda m: cfg.models[m].provider not in dead_providers)
    down = [r for r, h in health.items() if h["status"] == "down"]
    degraded = [r for r, h in health.items() if h["status"] == "degraded"]
    out = []
    if down:
        out.append(f"route{'s' if len(down) > 1 else ''} {', '.join(down)}: no target can answer (every model "
                   f"{'they reach' if len(down) > 1 else 'it reaches'} is on a provider above): each request to "
                   f"{'them' if len(down) > 1 else 'it'} will fail until one of those providers is fixed (503 while a "
                   "server is down; 502, not retried, for a key not set)")
    if degraded:
        out.append(f"route{'s' if len(degraded) > 1 else ''} {', '.join(degraded)}: "
                   f"fall{'' if len(degraded) > 1 else 's'} back to {'their' if len(degraded) > 1 else 'its'} "
                   "other targets meanwhile")
    return out
