"""The decisions of the learning loop for one route, shared by the live `reflective` policy and the
offline replay (bench/learning_loop.py), so both run the same rules.

Per request: the boundary gives the tier for the request's task type; the plan says whether the
local answer gets judged (when the local tier answered) or whether to shadow-run the local tier and
judge that answer (when the frontier answered). The schedule's rules apply to the local tier's uses,
served or shadow. One addition for shadows: once a task type's local acceptance is conclusively
below the target (its upper credible bound under it), frontier requests of that type are shadowed
only at `shadow_audit_rate`, so a task type the local model cannot do stops costing evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from tierwise.learning.boundary import Boundary, BoundarySettings, Move, Tier, beta_lower
from tierwise.learning.schedule import Decision, EvaluationSchedule, ScheduleSettings, unit_hash


class LoopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    boundary: BoundarySettings = Field(default_factory=BoundarySettings)


@dataclass(frozen=True)
class Plan:
    tier: Tier
    judge: bool  # judge the local answer (served, or from a shadow run)
    shadow: bool  # run the local tier in the background for a frontier-routed request
    reason: str


class LearningLoop:
    def __init__(self, route: str, settings: LoopSettings | None = None, *, log_path: str | None = None) -> None:
        self.route = route
        self.settings = settings or LoopSettings()
        self.schedule = EvaluationSchedule(self.settings.schedule)
        self.boundary = Boundary(self.settings.boundary, log_path=log_path, route=route)

    def key(self, task_type: str) -> tuple[str, str, str]:
        return (self.route, task_type, "local")

    def unlikely_local(self, task_type: str) -> bool:
        st = self.boundary.states.get(task_type)
        if st is None or st.judged < self.settings.schedule.shadow_stop_after:
            return False
        upper = beta_lower(st.a, st.b, self.settings.schedule.shadow_stop_quantile)
        return upper < self.settings.boundary.quality_target

    def plan(self, task_type: str, request_id: str, *, negative_feedback: bool = False) -> Plan:
        tier = self.boundary.tier(task_type)
        key = self.key(task_type)
        if tier == "local":
            d = self.schedule.decide(key, request_id, negative_feedback=negative_feedback)
            return Plan(tier, d.judge, False, d.reason)
        if self.unlikely_local(task_type) and not negative_feedback:
            hit = unit_hash(request_id, "audit") < self.settings.schedule.shadow_audit_rate
            d = Decision(hit, "audit" if hit else "skip-unlikely")
        else:
            d = self.schedule.decide(key, request_id, negative_feedback=negative_feedback, count_use=False,
                                     shadow=True)
        if d.judge:
            self.schedule.count_use(key, d)
        return Plan(tier, d.judge, d.judge, d.reason)

    def verdict(self, task_type: str, accepted: float, *, request_id: str | None = None,
                at: float | None = None, feedback: bool = False) -> Move | None:
        """Record a verdict on a local answer of `task_type`; returns the boundary move it caused, if any.
        A verdict prompted by negative feedback (a biased sample) re-opens the pair but moves nothing."""
        # re-opening matters where the local tier serves: that is where a drift hurts users
        self.schedule.record(self.key(task_type), accepted >= 0.5, feedback=feedback,
                             reopen=self.boundary.tier(task_type) == "local")
        if feedback:
            return None
        return self.boundary.observe(task_type, accepted, at=at, request_id=request_id)
