"""The boundary between tiers, per task type, moved by evidence.

Each task type keeps a Beta posterior of the probability that the local tier's answer is accepted
(judge verdict or feedback). Old evidence is discounted (each new verdict multiplies the earlier
counts by `discount`), so the posterior can move back after the local model's quality drifts.

A task type starts on the frontier tier. It moves local when the lower credible bound of its
acceptance clears the route's quality target, and back to the frontier when the posterior mean
falls below the target (the gap between the two is the hysteresis that stops it flapping) or when
the latest verdicts alone (any run of the last 4 to `recent_window`) put the upper credible bound
below the target (a drift: the long memory would take too long to notice; the evidence before the
run is then dropped, since it describes the model as it was). Every
move is recorded with its evidence: the verdicts since the previous move, the posterior, and when.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("tierwise")

Tier = Literal["local", "frontier"]


class BoundarySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality_target: float = Field(0.80, gt=0.0, lt=1.0, description="acceptance the local tier must reach")
    credible: float = Field(0.90, ge=0.5, lt=1.0, description="two-sided credible mass; the lower bound is its lower edge")
    discount: float = Field(0.98, gt=0.5, le=1.0, description="weight kept by earlier evidence at each new verdict")
    recent_window: int = Field(12, ge=3, le=1000, description=(
        "verdicts of the short memory that can send a local task type back fast after a drift"))
    drift_credible: float = Field(0.999, ge=0.5, lt=1.0, description=(
        "credible mass of the short-memory test: high, so ordinary bad luck does not send a task type back"))
    prior_accept: float = Field(1.0, gt=0.0, description="Beta prior: pseudo-count of accepted answers")
    prior_reject: float = Field(1.0, gt=0.0, description="Beta prior: pseudo-count of rejected answers")


def beta_lower(a: float, b: float, q: float) -> float:
    from scipy.special import betaincinv  # scipy comes with scikit-learn, already a core dependency

    return float(betaincinv(a, b, q))


@dataclass
class TaskState:
    tier: Tier = "frontier"
    a: float = 1.0
    b: float = 1.0
    judged: int = 0  # verdicts since the last move
    good: int = 0
    total_judged: int = 0
    total_good: int = 0
    recent: deque[float] = field(default_factory=deque)

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

    def sentence(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.at))
        what = "moved local" if self.to == "local" else "moved back to frontier"
        return (f"{self.task_type} {what} on {when}, {self.good} good of {self.judged} judged "
                f"(acceptance lower bound {self.lower:.3f}, mean {self.mean:.3f}, target {self.target:.2f})")


class Boundary:
    """Per task type: the posterior, the current tier and the record of moves."""

    def __init__(self, settings: BoundarySettings | None = None, *, log_path: str | Path | None = None,
                 route: str | None = None) -> None:
        self.settings = settings or BoundarySettings()
        self.route = route
        self.states: dict[str, TaskState] = {}
        self.moves: list[Move] = []
        self._log_path = Path(log_path) if log_path else None
        self._lock = threading.Lock()
        if self._log_path is not None and self._log_path.exists():
            self._replay_log(self._log_path)

    def state(self, task_type: str) -> TaskState:
        st = self.states.get(task_type)
        if st is None:
            s = self.settings
            st = self.states[task_type] = TaskState(a=s.prior_accept, b=s.prior_reject,
                                                    recent=deque(maxlen=s.recent_window))
        return st

    def tier(self, task_type: str) -> Tier:
        st = self.states.get(task_type)
        return "frontier" if st is None else st.tier

    def lower_bound(self, task_type: str) -> float:
        st = self.state(task_type)
        return beta_lower(st.a, st.b, (1.0 - self.settings.credible) / 2.0)

    def observe(self, task_type: str, accepted: float, *, at: float | None = None,
                request_id: str | None = None) -> Move | None:
        """Add one verdict on a local answer (1 accepted, 0 rejected, or a share between); maybe move."""
        x = min(1.0, max(0.0, float(accepted)))
        s = self.settings
        with self._lock:
            st = self.state(task_type)
            # discount only the evidence above the prior, so a long run never forgets the prior's shape
            st.a = s.prior_accept + (st.a - s.prior_accept) * s.discount + x
            st.b = s.prior_reject + (st.b - s.prior_reject) * s.discount + (1.0 - x)
            st.judged += 1
            st.total_judged += 1
            good = x >= 0.5
            st.good += int(good)
            st.total_good += int(good)
            st.recent.append(x)
            lower = beta_lower(st.a, st.b, (1.0 - s.credible) / 2.0)
            mean = st.mean()
            to: Tier | None = None
            if st.tier == "frontier" and lower >= s.quality_target:
                to = "local"
            elif st.tier == "local":
                drift = self._recent_fails(st)
                if drift is not None:
                    # a change: the evidence before it describes a model that is gone, keep only the run after it
                    k, g = drift
                    st.a, st.b = s.prior_accept + g, s.prior_reject + (k - g)
                    to = "frontier"
                elif mean < s.quality_target:
                    to = "frontier"
            if to is None:
                return None
            move = Move(task_type, to, time.time() if at is None else at, st.good, st.judged, round(lower, 4),
                        round(mean, 4), s.quality_target, request_id, self.route)
            st.tier = to
            st.judged = st.good = 0
            st.recent.clear()
            self.moves.append(move)
        self._append_log(move)
        return move

    def _recent_fails(self, st: TaskState) -> tuple[int, float] | None:
        """Does some run of the latest verdicts (the last 4, 5, ... up to `recent_window`) alone put the upper
        bound of acceptance below the target? A drift shows in the newest verdicts first; the long memory would
        need many of them to move its mean. Returns the run (verdicts, accepted) or None."""
        s = self.settings
        q = 1.0 - (1.0 - s.drift_credible) / 2.0
        recent = list(st.recent)
        good = 0.0
        for k in range(1, len(recent) + 1):
            good += recent[-k]
            if k >= 4 and beta_lower(1.0 + good, 1.0 + k - good, q) < s.quality_target:
                return k, good
        return None

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

    def _append_log(self, move: Move) -> None:
        if self._log_path is None:
            return
        try:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            with self._log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(move), sort_keys=True) + "\n")
        except OSError as e:  # the move happened; losing its record must not fail a request
            log.warning("boundary: could not append to %s: %s", self._log_path, type(e).__name__)

    def _replay_log(self, path: Path) -> None:
        """Restore the tiers (not the posteriors) from an earlier run's moves."""
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                m = Move(**json.loads(line))
            except (ValueError, TypeError):
                continue
            if self.route is not None and m.route not in (None, self.route):
                continue
            self.moves.append(m)
            self.state(m.task_type).tier = m.to


def read_moves(path: str | Path) -> list[Move]:
    """Every move recorded in a boundary log (the read API the router-validation work consumes)."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(Move(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


__all__ = ["Boundary", "BoundarySettings", "Move", "TaskState", "read_moves"]
