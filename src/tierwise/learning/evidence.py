"""The learning loop's evidence, read back from the ledger and the boundary log: verdicts, shadow pairs,
feedback and moves. This is the read API other parts build on (`tierwise boundary`, the flywheel exports,
online validation of learned routes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierwise.learning.boundary import Move, move_back_mass, read_moves
from tierwise.learning.feedback import tier_of

log = logging.getLogger("tierwise.learning")


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
    for rec in ledger.scan(kind="eval", route=route, since=since):
        ev = (rec.extra or {}).get("evaluation")
        if not isinstance(ev, dict) or ev.get("skipped"):  # a budget refused it: no verdict, not evidence
            continue
        grade, accepted = ev.get("grade"), ev.get("accepted")
        if grade not in _GRADES or not (accepted is None or isinstance(accepted, bool)):
            # a row edited by hand or written by another tool: `grade: "x", accepted: "yes"` was exported as an
            # SFT example with verdict "x" (and counted as accepted by the boundary)
            log.warning("ledger row %r: evaluation grade %.40r, accepted %.40r is no verdict; left out",
                        rec.request_id, grade, accepted)
            continue
        extra = rec.extra or {}
        yield Verdict(str(ev.get("of") or rec.request_id), rec.route, _text(ev.get("task_type")), grade, accepted,
                      bool(ev.get("shadow")), _text(ev.get("schedule")), _text(ev.get("reason")), rec.ts,
                      rec.cost_usd, rec.prompt, _text(extra.get("local_answer"), None),
                      _text(extra.get("frontier_answer"), None))


_GRADES = (None, "good", "acceptable", "poor")


def _text(v: Any, default: Any = "") -> Any:
    return v if isinstance(v, str) else default


def shadow_pairs(ledger: Any, *, route: str | None = None) -> Iterator[Verdict]:
    """Judged pairs where both tiers answered the same request (the frontier served, the local was shadowed)."""
    for v in verdicts(ledger, route=route):
        if v.shadow:
            yield v


def feedback(ledger: Any, *, route: str | None = None) -> Iterator[dict[str, Any]]:
    """Every rating users gave, with the request's route, task type, tier and model."""
    for rec in ledger.scan(route=route):
        for f in (rec.extra or {}).get("feedback") or []:
            yield {"request_id": rec.request_id, "route": rec.route, "task_type": (rec.extra or {}).get("task_type"),
                   "tier": tier_of(rec.locality), "model": rec.decision, **f}


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


def saved_file(cfg: Any, route: str) -> dict[str, Any]:
    """The route's whole learned state file (as the reflective route saved it), or {}."""
    import json

    from tierwise.policies.reflective import state_path_for

    log = boundary_log_path(cfg, route)
    if log is None:
        return {}
    for p in (state_path_for(log, route), log.with_suffix(".state.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("route") in (None, route):
            return data
    return {}


def saved_state(cfg: Any, route: str) -> dict[str, Any]:
    """Each task type's saved boundary state (as `Boundary.dump` wrote it) from the route's learned state file."""
    return states_of(saved_file(cfg, route))


def states_of(data: dict[str, Any]) -> dict[str, Any]:
    b = data.get("boundary")
    return {str(t): st for t, st in b.items() if isinstance(st, dict)} if isinstance(b, dict) else {}


def saved_posteriors(cfg: Any, route: str, states: dict[str, Any] | None = None) -> dict[str, tuple[float, float]]:
    """Each task type's acceptance posterior (Beta a, b) from the route's saved learned state, if there is one."""
    out = {}
    for t, st in (saved_state(cfg, route) if states is None else states).items():
        if all(isinstance(st.get(k), (int, float)) and st[k] > 0 for k in "ab"):
            out[t] = (float(st["a"]), float(st["b"]))
    return out


def model_serves(cfg: Any, route: str, states: dict[str, Any]) -> dict[str, str]:
    """Per task type moved back to the frontier that the text model still serves (`request_model.after_move_back`):
    why, and where its check stands (the loop's own rule, read on the saved state)."""
    from tierwise.learning.drift import check_pair
    from tierwise.learning.loop import LearningLoop, LoopSettings

    pc = cfg.routes[route]
    rs = pc.request_model
    if rs.kind == "none" or rs.after_move_back == "off":
        return {}
    bset = pc.boundary.model_copy(update={"quality_target": pc.quality_target})
    loop = LearningLoop(route, LoopSettings(boundary=bset, request_model=rs.model_copy(update={"kind": "none"})))
    loop.boundary.load(states)
    out = {}
    for t, st in loop.boundary.states.items():
        if st.tier != "frontier" or st.total_judged <= st.judged:
            continue  # not moved back
        back = loop._model_back(st)
        if not back:
            continue
        since = f"{st.good} good of {st.judged} judged since its move back"
        if rs.after_move_back == "below-target":
            out[t] = f"the text model serves its requests it rates above {pc.quality_target:.2f} (moved back below the target)"
        elif back == 2:
            out[t] = (f"the text model serves its requests it rates above {pc.quality_target:.2f}, each judged: its check "
                      f"is undecided ({since}; decides at {rs.check_odds:g} to 1, or after {rs.check_max}"
                      + (" for the side it leans to)" if rs.check_margin is not None else ")"))
        elif rs.check_margin is not None:
            p0, p1 = check_pair(pc.quality_target, rs.check_margin)
            out[t] = (f"the text model serves its requests it rates above {pc.quality_target:.2f}, not each judged: "
                      f"its check favours acceptance {p0:.2f} over {p1:.2f} ({since})")
        else:
            out[t] = (f"the text model serves its requests it rates above {pc.quality_target:.2f}, not each judged: "
                      f"its check favours the target or reached {rs.check_max} verdicts ({since})")
    return out


def acceptance(cfg: Any, route: str, a: float, b: float, tier: str) -> dict[str, Any]:
    """Where a task type stands against the move rule: the lower credible bound of its acceptance (it moves local
    when that reaches the target) and its mean (a local type moves back when that falls below the target; with
    `boundary.move_back: credible`, when the upper edge of its credible interval does)."""
    from tierwise.learning.boundary import beta_lower

    pc = cfg.routes[route]
    lower = beta_lower(a, b, (1.0 - pc.boundary.credible) / 2.0)
    mean = a / (a + b)
    out = {"lower": round(lower, 3), "mean": round(mean, 3), "target": pc.quality_target,
           "sentence": (f"acceptance lower bound {lower:.2f}, moves local at {pc.quality_target:.2f}" if tier != "local"
                        else f"acceptance mean {mean:.2f}, back to the frontier below {pc.quality_target:.2f}")}
    if tier == "local" and pc.boundary.move_back == "credible":  # the move-back rule reads the interval's upper edge
        upper = beta_lower(a, b, (1.0 + move_back_mass(pc.boundary)) / 2.0)
        out["upper"] = round(upper, 3)
        out["sentence"] = f"acceptance upper bound {upper:.2f}, back to the frontier below {pc.quality_target:.2f}"
    return out


def boundary_table(cfg: Any, ledger: Any | None, route: str) -> list[dict[str, Any]]:
    """Per task type: its current tier (from the moves), the verdicts behind it (from the ledger), and where its
    saved posterior stands against the move rule (`acceptance`, when the route has saved its state)."""
    rows: dict[str, dict[str, Any]] = {}

    def row(task_type: str) -> dict[str, Any]:
        return rows.setdefault(task_type, {"task_type": task_type, "tier": "frontier", "judged": 0, "good": 0,
                                           "no_verdict": 0, "moves": 0, "last_move": None})

    for m in moves(cfg, route):
        r = row(m.task_type)
        r["tier"], r["last_move"] = m.to, m.sentence()
        r["moves"] += 1
    if ledger is not None:
        for v in verdicts(ledger, route=route):
            if v.schedule == "negative-feedback":
                continue
            if v.accepted is None:  # the judge was asked (and paid) but its reply carried no grade: not evidence,
                row(v.task_type)["no_verdict"] += 1  # but the user must see it, or the loop stalls in silence
                continue
            r = row(v.task_type)
            r["judged"] += 1
            r["good"] += int(v.accepted)
        for t, (n, local) in served_types(ledger, route).items():  # a type served but never judged is listed too
            row(t).update(requests=n, local_requests=local)
    states = saved_state(cfg, route)
    for t, (a, b) in saved_posteriors(cfg, route, states).items():
        if t in rows:
            rows[t]["acceptance"] = acceptance(cfg, route, a, b, rows[t]["tier"])
    for t, why in model_serves(cfg, route, states).items():
        if t in rows and rows[t]["tier"] == "frontier":
            rows[t]["model"] = why
    return [rows[k] for k in sorted(rows)]


SERVED_ROWS = 100_000  # the route's newest requests counted by `served_types` (a CLI read, not the whole ledger)


def served_types(ledger: Any, route: str) -> dict[str, tuple[int, int]]:
    """How many of the route's newest `SERVED_ROWS` answered requests each task type had, and how many of them the
    local tier answered (from the ledger, so it is current while the gateway runs; the route's state file is written
    only after a verdict and at shutdown). A frontier type's requests can be answered locally (within-type routing,
    explorations): without the count `boundary` showed such a type as `frontier` only (newuser37)."""
    rows = ledger.iter_rows(
        "SELECT json_extract(extra, '$.task_type') AS t, count(*) AS n, sum(locality = 'local') AS l FROM (SELECT "
        "extra, locality FROM requests WHERE route = ? AND kind = 'chat' AND status < 400 ORDER BY ts DESC LIMIT ?) "
        "WHERE t IS NOT NULL GROUP BY t", (route, SERVED_ROWS))
    return {str(r["t"]): (int(r["n"]), int(r["l"] or 0)) for r in rows}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a share k/n (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def route_evidence(cfg: Any, ledger: Any | None, route: str) -> dict[str, Any]:
    """A reflective route's online figures for `tierwise eval ledger`: the boundary's own table (the same
    counts `tierwise boundary` shows), the share of judged local answers accepted with its interval, how
    many verdicts came from shadow runs, and the users' ratings by the tier that answered."""
    table = boundary_table(cfg, ledger, route)
    judged = sum(r["judged"] for r in table)
    good = sum(r["good"] for r in table)
    shadow = 0
    no_verdict = 0
    ratings: dict[str, dict[str, int]] = {}
    if ledger is not None:
        for v in verdicts(ledger, route=route):
            if v.accepted is None:
                no_verdict += 1
            elif v.shadow and v.schedule != "negative-feedback":
                shadow += 1
        for f in feedback(ledger, route=route):
            tier = str(f.get("tier") or "unknown")
            rating = str(f.get("rating") or "unknown")
            ratings.setdefault(tier, {}).setdefault(rating, 0)
            ratings[tier][rating] += 1
    ci = wilson(good, judged)
    return {"task_types": table, "judged": judged, "accepted": good,
            "accepted_share": None if not judged else good / judged,
            "interval": None if ci is None else list(ci), "shadow_judged": shadow, "no_verdict": no_verdict,
            "feedback": ratings}


def evidence_lines(name: str, ev: dict[str, Any]) -> list[str]:
    """Plain-text lines of `route_evidence` for the CLI."""
    if not ev["judged"] and not ev["feedback"] and not ev["task_types"]:
        return [f"  {name}: no verdicts or feedback yet"]
    head = f"  {name}: {ev['accepted']} of {ev['judged']} judged local answers accepted"
    if ev["interval"] is not None:
        lo, hi = ev["interval"]
        head += f" ({ev['accepted_share']:.0%}, 95% interval {lo:.0%}–{hi:.0%})"
    head += f"; {ev['shadow_judged']} judged on shadow runs"
    if ev["no_verdict"]:
        head += f", {ev['no_verdict']} judge replies without a verdict"
    out = [head]
    for r in ev["task_types"]:
        out.append(f"    {r['task_type']:<24} {r['tier']:<8} {r['good']} good of {r['judged']} judged, "
                   f"{r['moves']} move(s)")
    for tier, counts in sorted(ev["feedback"].items()):
        out.append(f"    feedback on {tier} answers: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return out
