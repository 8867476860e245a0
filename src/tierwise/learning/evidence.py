"""The learning loop's evidence, read back from the ledger and the boundary log: verdicts, shadow pairs,
feedback and moves. This is the read API other parts build on (`tierwise boundary`, the flywheel exports,
online validation of learned routes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierwise.learning.boundary import Move, read_moves


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on a local answer (`eval` ledger record)."""

    request_id: str  # the request whose (local or shadow) answer was judged
    route: str
    task_type: str
    grade: str | None  # good | acceptable | poor | None (no recognisable verdict)
    accepted: bool | None
    shadow: bool  # the judged answer came from a shadow run (the frontier answered the user)
    schedule: str  # why it was judged (first-uses, sample, audit, re-probe, negative-feedback)
    reason: str  # the judge's reasoning, clipped
    ts: float
    cost_usd: float | None
    prompt: str | None = None
    local_answer: str | None = None
    frontier_answer: str | None = None


def verdicts(ledger: Any, *, route: str | None = None, since: float | None = None) -> Iterator[Verdict]:
    for rec in ledger.query(kind="eval", route=route, since=since):
        ev = (rec.extra or {}).get("evaluation")
        if not isinstance(ev, dict):
            continue
        yield Verdict(str(ev.get("of") or rec.request_id), rec.route, str(ev.get("task_type") or ""),
                      ev.get("grade"), ev.get("accepted"), bool(ev.get("shadow")), str(ev.get("schedule") or ""),
                      str(ev.get("reason") or ""), rec.ts, rec.cost_usd, rec.prompt,
                      (rec.extra or {}).get("local_answer"), (rec.extra or {}).get("frontier_answer"))


def shadow_pairs(ledger: Any, *, route: str | None = None) -> Iterator[Verdict]:
    """Judged pairs where both tiers answered the same request (the frontier served, the local was shadowed)."""
    for v in verdicts(ledger, route=route):
        if v.shadow:
            yield v


def feedback(ledger: Any, *, route: str | None = None) -> Iterator[dict[str, Any]]:
    """Every rating users gave, with the request's route, task type, tier and model."""
    for rec in ledger.query(route=route):
        for f in (rec.extra or {}).get("feedback") or []:
            yield {"request_id": rec.request_id, "route": rec.route, "task_type": (rec.extra or {}).get("task_type"),
                   "tier": rec.locality, "model": rec.decision, **f}


def boundary_log_path(cfg: Any, route: str) -> Path | None:
    """Where a reflective route's moves are recorded (as its builder chooses it)."""
    pc = cfg.routes.get(route)
    if getattr(pc, "policy", None) != "reflective":
        return None
    if pc.boundary_log:
        p = Path(pc.boundary_log)
        return p if p.is_absolute() else Path(cfg.base_dir) / p
    if not cfg.ledger.enabled or cfg.ledger.path == ":memory:":
        return None
    lp = Path(cfg.ledger.resolved_path(cfg.base_dir))
    return lp.with_name(lp.name + ".boundary.jsonl")


def moves(cfg: Any, route: str) -> list[Move]:
    p = boundary_log_path(cfg, route)
    return [] if p is None else [m for m in read_moves(p) if m.route in (None, route)]


def boundary_table(cfg: Any, ledger: Any | None, route: str) -> list[dict[str, Any]]:
    """Per task type: its current tier (from the moves) and the verdicts behind it (from the ledger)."""
    rows: dict[str, dict[str, Any]] = {}
    for m in moves(cfg, route):
        r = rows.setdefault(m.task_type, {"task_type": m.task_type, "tier": "frontier", "judged": 0, "good": 0,
                                          "moves": 0, "last_move": None})
        r["tier"], r["last_move"] = m.to, m.sentence()
        r["moves"] += 1
    if ledger is not None:
        for v in verdicts(ledger, route=route):
            if v.accepted is None or v.schedule == "negative-feedback":
                continue
            r = rows.setdefault(v.task_type, {"task_type": v.task_type, "tier": "frontier", "judged": 0, "good": 0,
                                              "moves": 0, "last_move": None})
            r["judged"] += 1
            r["good"] += int(v.accepted)
    return [rows[k] for k in sorted(rows)]
