"""Data classes in the MCP `route_task` advice (tierwise.mcp_server): where may this task's data go?

`privacy_advice(gateway, task, sample, data_classes, route)` finds the data classes of the task
(those the caller names, plus those the detector finds in the task's words and in an optional
`sample` of its input) and applies the gateway's privacy policy (`privacy.policy`, overlaid by
`privacy.routes.<route>`) to them:

- a `block` class: the data may not go to any remote model (`frontier_allowed` false, and the
  tier is local; the gateway itself would refuse a remote call with it);
- a `local_only` class: local only;
- a class with `regions`: frontier only on remote models whose provider has one of those regions
  (`frontier_models` lists them; none -> local);
- a `redact` class: frontier allowed, the values are replaced before they leave.

Without a `privacy:` config, named classes are still reported, but no policy applies. Values
are never returned: only class names, entity names and counts.
"""

from __future__ import annotations

from typing import Any

from tierwise.privacy.policy import decide
from tierwise.privacy.policy_config import STRICTNESS

MAX_SAMPLE_CHARS = 200_000


def privacy_advice(gw: Any, task: str, sample: str | None, data_classes: list[str] | None,
                   route: str | None) -> dict[str, Any] | None:
    cfg = getattr(gw.cfg, "privacy", None)
    named = sorted(set(data_classes or []))
    if cfg is None:
        if not named:
            return None
        return {"classes": {c: None for c in named}, "frontier_allowed": True,
                "note": "no privacy policy is configured: the gateway does not restrict these classes"}
    if route and route not in gw.cfg.routes and route not in gw.cfg.models:
        known = sorted(gw.cfg.routes)
        shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
        # A typo must not fall back to the default policy: that could advise the frontier for a
        # route whose data is local_only.
        raise ValueError(f"unknown route {route[:64]!r} (routes: {shown or 'none'})")
    boundary = gw.privacy
    unknown = [c for c in named if c not in boundary.table.class_entities]
    if unknown:
        raise ValueError(f"unknown data class {unknown} (declared: {', '.join(sorted(boundary.table.class_entities))})")
    counts: dict[str, int] = {}
    try:
        for text in (task, (sample or "")[:MAX_SAMPLE_CHARS]):
            if text:
                for f in boundary.scan(text):
                    counts[f.entity] = counts.get(f.entity, 0) + 1
        scan_failed = False
    except Exception:
        scan_failed = True
    found = boundary.table.classes_of(counts)
    classes = {**{c: 0 for c in named}, **found}
    policies = boundary.table.for_route(route) if route else boundary.table.for_route("")
    out: dict[str, Any] = {"classes": classes, "entities": counts}
    if scan_failed:
        out.update(frontier_allowed=False, frontier_models=[],
                   reason="the privacy detector failed on the text: treat it as sensitive (local only)")
        return out
    remote = [d for d in gw.deployments.values() if d.locality == "remote"]
    allowed, reasons = [], []
    for d in remote:
        v = decide(policies, classes, boundary.table.class_entities, d.regions, counts)
        if v.action == "send":
            allowed.append(d.name)
        else:
            reasons.append(v.reason)
    strictest = max((policies[c].action for c in classes if c in policies), key=STRICTNESS.__getitem__,
                    default=None)
    out["policy"] = {c: policies[c].action for c in classes if c in policies}
    out["frontier_allowed"] = bool(allowed)
    out["frontier_models"] = allowed
    if not classes:
        out["reason"] = "no protected data class found in the task"
    elif not allowed:
        out["reason"] = reasons[0] if reasons else "no remote model may receive these classes"
    elif strictest == "redact":
        out["reason"] = "allowed to remote models with the values redacted on the way out"
    else:
        out["reason"] = "allowed by the policy"
    return out
