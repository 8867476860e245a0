"""The boundary between tiers, per task type, moved by evidence.

Each task type keeps a Beta posterior of the probability that the local tier's answer is accepted
(judge verdict or feedback). Old evidence is discounted (each new verdict multiplies the earlier
counts by `discount`), so the posterior can move back after the local model's quality drifts.

A task type starts on the frontier tier. It moves local when the lower credible bound of its
acceptance clears the route's quality target, and back to the frontier when the posterior mean
falls below the target (the gap between the two is the hysteresis that stops it flapping; with
`move_back: credible`, when the upper edge of its credible interval does: the move-local rule mirrored, at
`move_back_credible` if given) or when
a change-point test on its verdicts fires (a Bernoulli CUSUM, `learning.drift`: the long memory would
take too long to notice a drift; the evidence before the change is then dropped, since it describes the
model as it was). Every move is recorded with its evidence: the verdicts since the previous move, the
posterior, why, and when.

No one gateway key decides a move. Each key's share of the (discounted) evidence is kept; when other keys
have given at least one verdict's worth, a move must also hold with the evidence of the key that pushes
hardest toward it and of the key that pushes hardest against it left out (on at least one verdict's worth
of what remains; a change-point alarm likewise on its run's verdicts). One client — which chooses its
prompts, and so whether the local answers it gets pass — can then neither move a task type every other
client is served by, nor hold it where the others' evidence says it should not be, whatever share of the
evidence it holds. A type whose evidence comes from one key alone (a gateway without keys, a one-team
type) moves on it as before; two keys that disagree leave the type where it is. The whole state (posteriors, tiers, the change-point test) can be saved and
loaded, so a restart keeps what was learned.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tierwise.learning.drift import Cusum, drop_odds, threshold, update, weights

log = logging.getLogger("tierwise")

Tier = Literal["local", "frontier"]


class BoundarySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality_target: float = Field(0.80, gt=0.0, lt=1.0, description="acceptance the local tier must reach")
    credible: float = Field(0.90, ge=0.5, lt=1.0, description="two-sided credible mass; the lower bound is its lower edge")
    discount: float = Field(0.98, gt=0.5, le=1.0, description="weight kept by earlier evidence at each new verdict")
    recent_window: int = Field(12, ge=3, le=1000, description="unused (kept so older configs still load)")
    drift_credible: float = Field(0.999, ge=0.5, lt=1.0, description=(
        "the change-point test fires at ln(1/(1-drift_credible)): on an unchanged model, false alarms are "
        "on average more than 1/(1-drift_credible) verdicts apart"))
    move_back: Literal["mean", "credible"] = Field("mean", description=(
        "when a local task type moves back to the frontier (besides the change-point test): mean (its posterior "
        "mean is below the target) or credible (the upper edge of its credible interval is below the target: the "
        "move-local rule mirrored, so a move either way needs the same credibility)"))
    move_back_credible: float | None = Field(None, ge=0.5, lt=1.0, description=(
        "with `move_back: credible`: the two-sided credible mass whose upper edge must fall below the target for a "
        "move back (default: `credible`, the move-local rule's); higher asks more evidence before a local type "
        "goes back, the change-point test still sending a drifted one back"))
    drift_restart: Literal["run", "prior"] = Field("run", description=(
        "what a type's posterior keeps when the change-point test sends it back: run (the verdicts of the test's "
        "run, the evidence after the change) or prior (nothing: the run was picked by the test for being bad, so "
        "it says the model changed but is no estimate of how good it is now; the type starts again from the "
        "prior and earns its way back as a new type does)"))
    drift_p0_credible: float | None = Field(None, ge=0.0, lt=1.0, description=(
        "the acceptance the change-point test takes as a local type's unchanged rate when its statistic leaves "
        "zero: unset, the posterior mean; set, the lower edge of the posterior's two-sided credible interval of "
        "this mass. The test's false-alarm bound holds only if the type is at least that good, and a mean read "
        "off a short lucky run overstates it (the type moved local for looking good), so each rejection then "
        "weighs too much and a few ordinary ones fire the test; a drop far below the target is still found"))
    drift_p0_floor_after: int | None = Field(None, ge=0, le=1_000_000, description=(
        "with `drift_p0_credible`: once a local type has this many verdicts since it moved local, the change-point "
        "test's unchanged rate is at least the quality target (unset: the credible edge as it is). A type near the "
        "target has its edge below it (0.67 for 31 good of 39), where the test weighs 0.67 against the drop's 0.5 and "
        "two acceptances undo any rejection; at the target a rejection weighs 0.69 instead of 0.42. A type just moved "
        "local keeps its edge (its false alarms are what the edge was chosen against, round 23)"))
    drift_window: int | None = Field(None, ge=1, le=50, description=(
        "after a rejection opens the change-point test's run on a local type, the next this many verdicts are "
        "weighed with it before the run can end: the statistic is not floored at zero inside the window, and the "
        "type's requests are judged while it is open (the change-watch). The run ends only if the window's sum is "
        "still at or below zero after them (unset: Page's floor at every verdict, so two acceptances after a lone "
        "rejection end the run and a drifted type waits for its next audit)"))
    move_back_keep: float | None = Field(None, ge=0.0, le=1_000_000.0, description=(
        "when a local type moves back because its posterior fell below the target (`below-target`, not the "
        "change-point test): the most verdicts' worth of evidence its posterior keeps, its mean unchanged (unset: "
        "all of it). A type sent back by an unlucky run keeps a posterior the value of information still finds "
        "worth judging, so it is explored again and moves local on fresh verdicts if it is good; one that is "
        "below the target is confirmed by a few verdicts and left on the frontier"))
    prior_accept: float = Field(1.0, gt=0.0, description="Beta prior: pseudo-count of accepted answers")
    prior_reject: float = Field(1.0, gt=0.0, description="Beta prior: pseudo-count of rejected answers")
    key_share: float = Field(0.25, gt=0.0, le=1.0, description=(
        "most of a task type's last `key_window` pieces of evidence (judged verdicts, verifier verdicts, "
        "ratings) one gateway key's requests may give while other keys are among the type's clients: beyond it "
        "that key's requests are not judged and its ratings not counted, so one client cannot move the boundary "
        "every other client is served by"))
    key_window: int = Field(50, ge=4, le=100_000, description="pieces of evidence per task type `key_share` is taken over")
    key_idle_s: float = Field(3600.0, ge=0.0, le=365 * 86400.0, description=(
        "seconds after its last request of a task type that a gateway key stops counting as one of the type's "
        "clients (whose share of the evidence other keys' shares are capped against)"))


@functools.cache
def _special() -> Any:
    """scipy.special, imported on first use (scipy comes with scikit-learn, already a core dependency) and then
    held: a decision under `sampling: value` reads a Beta's cdf on every request."""
    import scipy.special

    return scipy.special


def beta_lower(a: float, b: float, q: float) -> float:
    return float(_special().betaincinv(a, b, q))


def beta_cdf(a: float, b: float, x: float) -> float:
    return float(_special().betainc(a, b, x))


def move_back_mass(s: BoundarySettings) -> float:
    """The two-sided credible mass the credible move back reads: `move_back_credible`, else `credible`."""
    return s.credible if s.move_back_credible is None else s.move_back_credible


def below_target(a: float, b: float, s: BoundarySettings) -> bool:
    """Whether a local task type with posterior Beta(a, b) moves back to the frontier (`move_back`): its mean under
    the target, or (`credible`) the upper edge of its two-sided credible interval under it (`move_back_mass`)."""
    if s.move_back == "credible":
        return beta_lower(a, b, (1.0 + move_back_mass(s)) / 2.0) < s.quality_target
    return a / (a + b) < s.quality_target


# A type flapping between the tiers (a drift that comes and goes, or two keys rating it each their way) adds a move
# every few dozen verdicts for as long as the gateway runs: the moves kept in memory, and read back from the log, are
# the latest; the log passes to `<log>.1` past MAX_LOG_BYTES (one older file kept).
MAX_MOVES = 10_000
MAX_LOG_BYTES = 8 << 20
MAX_KEYS = 256  # gateway keys whose share of a type's evidence is kept (the smallest share goes first)
MAX_COUNT = 2**53  # verdicts a saved count may hold (exact as a float)


@dataclass
class TaskState:
    tier: Tier = "frontier"
    a: float = 1.0
    b: float = 1.0
    judged: int = 0  # verdicts since the last move
    good: int = 0
    total_judged: int = 0
    total_good: int = 0
    sent_back: int = 0  # moves back below the target (`below-target`; not the change-point test's)
    drifted: int = 0  # moves back by the change-point test (`drift`)
    # `request_model.after_move_back: checked`: the check's statistic since the last move (`drift.check_step`) and
    # its verdicts since it last stood at its floor (the decision for the target)
    check: float = 0.0
    check_run: int = 0
    check_decided: bool = False  # it has stood at its floor since the last move
    cusum: Cusum = field(default_factory=Cusum)
    # per gateway key: its (discounted) accepted and rejected evidence in a and b, above the prior
    by_key: dict[str, list[float]] = field(default_factory=dict)
    # per gateway key: its verdicts and accepted ones in the change-point test's current run
    run_by: dict[str, list[float]] = field(default_factory=dict)

    def mean(self) -> float:
        return self.a / (self.a + self.b)


@dataclass(frozen=True)
class Move:
    task_type: str
    to: Tier
    at: float  # unix time
    good: int  # verdicts since the previous move that accepted the local answer
    judged: int
    lower: float
    mean: float
    target: float
    request_id: str | None = None
    route: str | None = None
    why: str | None = None  # evidence | below-target | drift

    def sentence(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.at))
        what = "moved local" if self.to == "local" else "moved back to frontier"
        return (f"{self.task_type} {what} on {when}, {self.good} good of {self.judged} judged "
                f"(acceptance lower bound {self.lower:.3f}, mean {self.mean:.3f}, target {self.target:.2f})"
                + (" after a change-point test fired" if self.why == "drift" else ""))


class Boundary:
    """Per task type: the posterior, the current tier and the record of moves."""

    def __init__(self, settings: BoundarySettings | None = None, *, log_path: str | Path | None = None,
                 route: str | None = None) -> None:
        self.settings = settings or BoundarySettings()
        self.route = route
        self.states: dict[str, TaskState] = {}
        self.moves: deque[Move] = deque(maxlen=MAX_MOVES)  # the latest
        self.moved: dict[str, float] = {}  # every task type a move was recorded for -> when it last moved
        self._log_path = Path(log_path) if log_path else None
        self._lock = threading.Lock()
        if self._log_path is not None and self._log_path.exists():
            self._replay_log(self._log_path)

    def state(self, task_type: str) -> TaskState:
        st = self.states.get(task_type)
        if st is None:
            s = self.settings
            st = self.states[task_type] = TaskState(a=s.prior_accept, b=s.prior_reject)
        return st

    def tier(self, task_type: str) -> Tier:
        st = self.states.get(task_type)
        return "frontier" if st is None else st.tier

    def lower_bound(self, task_type: str) -> float:
        st = self.state(task_type)
        return beta_lower(st.a, st.b, (1.0 - self.settings.credible) / 2.0)

    def wrong_side(self, task_type: str) -> float:
        """Posterior probability that the task type's current tier is on the wrong side of the target."""
        st = self.state(task_type)
        below = beta_cdf(st.a, st.b, self.settings.quality_target)
        return below if st.tier == "local" else 1.0 - below

    def observe(self, task_type: str, accepted: float, *, at: float | None = None,
                request_id: str | None = None, key: str = "",
                hold: Callable[[str, int], bool] | None = None,
                current: Callable[[], set[str]] | None = None) -> Move | None:
        """Add one verdict on a local answer (1 accepted, 0 rejected, or a share between) given by a request of
        the gateway key named `key`; maybe move. `hold(why, run)` is asked before a move (`run`: the verdicts of
        the change-point test's run, for `drift`); True (one gateway key's evidence would decide it alone:
        `learning.key_share`) keeps the tier: the posterior has the verdict, and a change-point test that fired
        restarts without dropping the evidence before it. `current()`: the type's current clients (keys with recent
        requests, `learning.key_share`); only their evidence can hold back or push a move as one key's (an idle
        key's old verdicts stay in the posterior but no longer veto what the active clients' evidence says).
        """
        x = min(1.0, max(0.0, float(accepted)))
        s = self.settings
        with self._lock:
            st = self.state(task_type)
            # the change-point test's in-control rate, read only when its statistic leaves zero: the posterior
            # mean, or (`drift_p0_credible`) the lower edge of its credible interval
            p0_now = st.mean()
            if st.tier == "local" and not st.cusum.watching() and s.drift_p0_credible is not None:
                p0_now = beta_lower(st.a, st.b, (1.0 - s.drift_p0_credible) / 2.0)
                if s.drift_p0_floor_after is not None and st.judged >= s.drift_p0_floor_after:
                    p0_now = max(p0_now, s.quality_target)
            # discount only the evidence above the prior, so a long run never forgets the prior's shape
            st.a = s.prior_accept + (st.a - s.prior_accept) * s.discount + x
            st.b = s.prior_reject + (st.b - s.prior_reject) * s.discount + (1.0 - x)
            self._attribute(st, key, x)
            st.judged += 1
            st.total_judged += 1
            good = x >= 0.5
            st.good += int(good)
            st.total_good += int(good)
            lower = beta_lower(st.a, st.b, (1.0 - s.credible) / 2.0)
            mean = st.mean()
            to: Tier | None = None
            why = None
            if st.tier == "frontier" and lower >= s.quality_target and self._holds_without_extremes(st, "local", self._voters(st, current)):
                to, why = "local", "evidence"
            elif st.tier == "local":
                if not st.cusum.watching():
                    st.run_by.clear()  # this verdict starts the test's run
                run = st.run_by.setdefault(key, [0.0, 0.0])
                run[0] += 1.0
                run[1] += x
                drift = update(st.cusum, x, p0_now, s.quality_target, threshold(s.drift_credible),
                               s.drift_window or 0)
                if (drift is not None and self._drift_without_extremes(st, self._voters(st, current))
                        and not (hold is not None and hold("drift", drift[0]))):
                    # a change: the evidence before it describes a model that is gone, keep only the run after it
                    # (`drift_restart: run`) or nothing (`prior`: the test chose the run for being bad)
                    k, g = drift if s.drift_restart == "run" else (0.0, 0.0)
                    st.a, st.b = s.prior_accept + g, s.prior_reject + (k - g)
                    st.by_key = {kk: [v[1], v[0] - v[1]] for kk, v in st.run_by.items()} \
                        if s.drift_restart == "run" else {}
                    to, why = "frontier", "drift"
                elif below_target(st.a, st.b, s) and self._holds_without_extremes(st, "frontier", self._voters(st, current)):
                    to, why = "frontier", "below-target"
                if drift is not None or st.cusum.run == 0:
                    st.run_by.clear()  # the test restarted (an alarm one key alone raised is dropped with it)
            if to is None or (why != "drift" and hold is not None and hold(str(why), st.judged)):
                return None
            move = Move(task_type, to, time.time() if at is None else at, st.good, st.judged, round(lower, 4),
                        round(mean, 4), s.quality_target, request_id, self.route, why)
            if why == "drift":
                st.drifted += 1
            if why == "below-target":
                st.sent_back += 1
                if s.move_back_keep is not None:
                    self._keep(st, s.move_back_keep)
            st.tier = to
            st.cusum = Cusum()
            st.run_by.clear()
            st.judged = st.good = st.check_run = 0
            st.check, st.check_decided = 0.0, False
            self.moves.append(move)
            self.moved[task_type] = move.at
        self._append_log(move)
        return move

    def _keep(self, st: TaskState, most: float) -> None:
        """`move_back_keep`: the posterior's evidence above the prior scaled down to at most `most` verdicts' worth
        (its mean unchanged), each key's part with it."""
        s = self.settings
        ea, eb = st.a - s.prior_accept, st.b - s.prior_reject
        if ea + eb <= most:
            return
        f = most / (ea + eb)
        st.a, st.b = s.prior_accept + ea * f, s.prior_reject + eb * f
        st.by_key = {k: [v[0] * f, v[1] * f] for k, v in st.by_key.items()}

    def _attribute(self, st: TaskState, key: str, x: float) -> None:
        d = self.settings.discount
        for v in st.by_key.values():
            v[0] *= d
            v[1] *= d
        mine = st.by_key.get(key)
        if mine is None:
            if len(st.by_key) >= MAX_KEYS:  # the smallest share stays in the posterior, unattributed
                del st.by_key[min(st.by_key, key=lambda k: sum(st.by_key[k]))]
            mine = st.by_key[key] = [0.0, 0.0]
        mine[0] += x
        mine[1] += 1.0 - x

    @staticmethod
    def _voters(st: TaskState, current: Callable[[], set[str]] | None) -> dict[str, list[float]]:
        if current is None or len(st.by_key) < 2:
            return st.by_key
        now = current()
        return {k: v for k, v in st.by_key.items() if not k or k in now}

    def _extremes(self, st: TaskState, to: Tier, by_key: dict[str, list[float]]) -> tuple[str | None, str | None]:
        """The key whose evidence pushes hardest toward a move `to` (when the other keys have given at least one
        verdict's worth of evidence: else it is alone, and None) and the key that pushes hardest against it (its
        own acceptance on the other side of the target; None when no key does)."""
        if len(by_key) < 2:
            return None, None
        t = self.settings.quality_target
        sign = 1.0 if to == "local" else -1.0

        def push(kk: str) -> float:
            a, b = by_key[kk]
            return sign * (a - t * (a + b))

        top = max(by_key, key=push)
        # one key's evidence about all there is: it moves the type alone, as it always did
        pro = top if sum(a + b for kk, (a, b) in by_key.items() if kk != top) >= 1.0 else None
        con = min(by_key, key=push)
        return pro, (con if pro is not None and con != top and push(con) < 0.0 else None)

    def _holds_without_extremes(self, st: TaskState, to: Tier, by_key: dict[str, list[float]]) -> bool:
        """Whether the move `to` also holds on the evidence no one key decides: with a key pushing against it (its
        own acceptance on the other side of the target), without that key's evidence and without that of the key
        pushing hardest toward it (on at least one verdict's worth of what remains); without one, with the key
        pushing hardest toward it weighed as at most all the other keys together. No one key can make a move by
        its volume, nor stop one that the other keys' evidence calls for."""
        pro, con = self._extremes(st, to, by_key)
        if pro is None:
            return True
        s = self.settings
        pa, pb = by_key[pro]
        a, b = st.a, st.b
        if con is None:
            others = sum(ka + kb for kk, (ka, kb) in by_key.items() if kk != pro)
            cut = max(0.0, 1.0 - others / (pa + pb)) if pa + pb > 0 else 0.0
            a, b = a - pa * cut, b - pb * cut
        else:
            ca, cb = by_key[con]
            a, b = a - pa - ca, b - pb - cb
        a, b = max(a, s.prior_accept), max(b, s.prior_reject)
        if a + b - s.prior_accept - s.prior_reject < 1.0:
            return False  # nothing left to decide on: the tier stays
        if to == "local":
            return beta_lower(a, b, (1.0 - s.credible) / 2.0) >= s.quality_target
        return below_target(a, b, s)

    def _drift_without_extremes(self, st: TaskState, by_key: dict[str, list[float]]) -> bool:
        """Whether the change-point alarm also holds on its run's verdicts that no one key decides (the sum of
        their log-likelihood ratios reaches the threshold): with a key whose verdicts in the run dissent (accepted,
        on balance), without its verdicts and those of the key that gave the run's strongest push; without one,
        with that key's push counted at most as much as all the others'. Unless one key's evidence is about all
        there is."""
        if len(by_key) < 2 or not st.run_by:
            return True
        s = self.settings
        rejection, acceptance = weights(st.cusum.p0, s.quality_target)

        def llr(v: list[float]) -> float:
            return (v[0] - v[1]) * rejection - v[1] * acceptance

        pro = max(st.run_by, key=lambda kk: llr(st.run_by[kk]))
        if sum(a + b for kk, (a, b) in by_key.items() if kk != pro) < 1.0:
            return True
        con = min(st.run_by, key=lambda kk: llr(st.run_by[kk]))
        rest = sum(llr(v) for kk, v in st.run_by.items() if kk not in (pro, con))
        if con != pro and llr(st.run_by[con]) < 0.0:  # a key whose verdicts in the run dissent: both left out
            return rest >= threshold(s.drift_credible)
        others = rest + (llr(st.run_by[con]) if con != pro else 0.0)
        return others + min(llr(st.run_by[pro]), max(others, 0.0)) >= threshold(s.drift_credible)

    def history(self, task_type: str | None = None) -> list[Move]:
        return [m for m in self.moves if task_type is None or m.task_type == task_type]

    def snapshot(self) -> list[dict[str, object]]:
        """The current boundary, one row per task type (what `tierwise boundary` prints)."""
        rows = []
        for name in sorted(self.states):
            st = self.states[name]
            rows.append({"task_type": name, "tier": st.tier, "judged": st.total_judged, "good": st.total_good,
                         "mean": round(st.mean(), 4), "lower": round(self.lower_bound(name), 4),
                         "target": self.settings.quality_target})
        return rows

    def moved_at(self, task_type: str) -> float:
        """When `task_type` last moved (unix time; 0.0 when no move of it was kept or logged)."""
        return self.moved.get(task_type, 0.0)

    def dump(self) -> dict[str, object]:
        """The learned state (posteriors, tiers, verdict counts, the change-point test), JSON-ready."""
        with self._lock:
            return {name: {"tier": st.tier, "a": st.a, "b": st.b, "judged": st.judged, "good": st.good,
                           "total_judged": st.total_judged, "total_good": st.total_good,
                           "sent_back": st.sent_back, "drifted": st.drifted, "cusum": asdict(st.cusum),
                           "check": st.check, "check_run": st.check_run, "check_decided": st.check_decided,
                           "by_key": {k: list(v) for k, v in st.by_key.items()}}
                    for name, st in self.states.items()}

    def load(self, data: dict[str, object]) -> None:
        """Restore what `dump` gave (what is malformed is skipped: a state file is not trusted blindly)."""
        with self._lock:
            for name, raw in data.items():
                try:
                    d = dict(raw)  # type: ignore[call-overload]
                    tier: Tier = "local" if d["tier"] == "local" else "frontier"
                    a, b = max(1e-6, float(d["a"])), max(1e-6, float(d["b"]))
                    counts = [int(d[f]) for f in ("judged", "good", "total_judged", "total_good")]
                    judged, good, total_judged, total_good = counts
                    # (the counts since the last move decide `after_move_back: checked`: a negative, inconsistent or
                    # 400-digit one would serve a type unchecked or fail its every request)
                    if not (0 <= good <= judged <= total_judged <= MAX_COUNT and 0 <= total_good <= total_judged):
                        raise ValueError("counts")
                    c = dict(d.get("cusum") or {})
                    cusum = Cusum(float(c.get("s", 0.0)), float(c.get("p0", 0.0)), int(c.get("run", 0)),
                                  float(c.get("run_good", 0.0)))
                    by_key: dict[str, list[float]] = {}
                    for k, v in list(dict(d.get("by_key") or {}).items())[:MAX_KEYS]:
                        ka, kb = float(v[0]), float(v[1])
                        if 0.0 <= ka <= a and 0.0 <= kb <= b:  # (a share never exceeds the whole)
                            by_key[str(k)] = [ka, kb]
                    # every field is read before any is set: a malformed one skips the type's whole state
                    sent_back, drifted = (max(0, int(d.get(f) or 0)) for f in ("sent_back", "drifted"))
                    # (a state saved before the check was floored: its statistic was the sum since the move back)
                    check = (float(d["check"]) if "check" in d
                             else drop_odds(counts[1], counts[0], self.settings.quality_target))
                    check_run = max(0, int(d["check_run"])) if "check_run" in d else counts[0]
                    check_decided = d.get("check_decided", False)
                    if not math.isfinite(check) or not isinstance(check_decided, bool):
                        raise ValueError("check")
                    st = self.state(str(name))
                    st.tier, st.a, st.b, st.cusum, st.by_key = tier, a, b, cusum, by_key
                    st.judged, st.good, st.total_judged, st.total_good = counts
                    st.sent_back, st.drifted, st.check, st.check_run = sent_back, drifted, check, check_run
                    st.check_decided = check_decided
                except (KeyError, TypeError, ValueError, IndexError, OverflowError):  # (int(1e999): OverflowError)
                    log.warning("boundary: skipped a malformed saved state for a task type")

    def _append_log(self, move: Move) -> None:
        if self._log_path is None:
            return
        try:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            if self._log_path.exists() and self._log_path.stat().st_size >= MAX_LOG_BYTES:
                os.replace(self._log_path, _older(self._log_path))
            with self._log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(move), sort_keys=True) + "\n")
        except OSError as e:  # the move happened; losing its record must not fail a request
            log.warning("boundary: could not append to %s: %s", self._log_path, type(e).__name__)

    def _replay_log(self, path: Path) -> None:
        """Restore the tiers (not the posteriors) from an earlier run's moves."""
        for m in read_moves(path):
            if self.route is not None and m.route not in (None, self.route):
                continue
            self.moves.append(m)
            self.moved[m.task_type] = m.at
            self.state(m.task_type).tier = m.to


def _older(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def _tail_lines(path: Path) -> list[str]:
    """The lines of the last MAX_LOG_BYTES of `path` (a cut first line dropped); none when it is missing."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - MAX_LOG_BYTES))
            data = fh.read(MAX_LOG_BYTES)
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if size > MAX_LOG_BYTES else lines


def read_moves(path: str | Path) -> list[Move]:
    """The latest MAX_MOVES moves recorded in a boundary log and its older file (the read API `tierwise boundary`
    and the router-validation work consume)."""
    p = Path(path)
    out: deque[Move] = deque(maxlen=MAX_MOVES)
    for line in _tail_lines(_older(p)) + _tail_lines(p):
        try:
            out.append(Move(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return list(out)


__all__ = ["Boundary", "BoundarySettings", "Move", "TaskState", "below_target", "move_back_mass", "read_moves"]
