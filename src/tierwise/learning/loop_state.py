"""A learning loop's saved state read back (`LearningLoop.load`, after a restart): the boundary, the schedule, the
counts, the audit account and the models, each part checked as it is put back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierwise.learning.loop import LearningLoop

STATE_VERSION = 1


def load_state(loop: LearningLoop, data: dict[str, Any]) -> None:
    """Put a saved `LearningLoop.dump` back into `loop`: a state of another version or route is ignored, and
    each part keeps only values of the right kind and range (the file is read after a restart, maybe edited)."""
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return
    if data.get("route") not in (None, loop.route):  # another route's evidence is not this one's
        return
    loop.boundary.load(data.get("boundary") or {})
    loop.schedule.load(data.get("schedule") or [])
    seen = data.get("seen") or {}
    if isinstance(seen, dict):
        loop.seen = {str(k): int(v) for k, v in seen.items() if isinstance(v, int) and v >= 0}
    loop.total = max(int(data.get("total") or 0), sum(loop.seen.values()))
    served = data.get("served_local") or {}
    if isinstance(served, dict):
        loop.served_local = {str(k): v for k, v in served.items() if isinstance(v, int) and v >= 0}
    credit = data.get("audit_credit") or {}
    if isinstance(credit, dict):
        loop.audit_credit = {str(k): float(v) for k, v in credit.items()
                             if isinstance(v, (int, float)) and 0.0 <= v < 1.0}
    loop.budget.load(data.get("audit_budget"))
    bs = loop.settings.boundary  # a state saved before the keys' parts were: its evidence counts as the gateway's
    loop.keys.load(data.get("keys"), {t: st.a - bs.prior_accept + st.b - bs.prior_reject
                                      for t, st in loop.boundary.states.items()})
    if isinstance(data.get("within"), dict):
        loop.within.load(data["within"])
    if loop.request_model is not None:
        loop.request_model.unlabelled = loop._moved_types()
        if isinstance(data.get("request_model"), dict):
            loop.request_model.load(data["request_model"])  # (its refit reads `unlabelled`)
    if loop.order is not None and isinstance(data.get("order"), dict):
        loop.order.load(data["order"])
    for k, v in (data.get("costs") or {}).items():
        if k in loop.costs and isinstance(v, (int, float)) and v >= 0:
            if {"judge": loop.settings.value.judge_usd, "shadow": loop.settings.value.shadow_usd}.get(k) is None:
                loop.costs[k] = float(v)
