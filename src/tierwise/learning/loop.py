"""The decisions of the learning loop for one route, shared by the live `reflective` policy and the
offline replay (bench/learning_loop.py), so both run the same rules.

Per request: the boundary gives the tier for the request's task type; the plan says whether the
local answer gets judged (when the local tier answered) or whether to shadow-run the local tier and
judge that answer (when the frontier answered). The schedule's rules apply to the local tier's uses,
served or shadow. One addition for shadows: once a task type's local acceptance is conclusively
below the target (its upper credible bound under it), frontier requests of that type are shadowed
only at `shadow_audit_rate`, so a task type the local model cannot do stops costing evaluations.

`sampling: value` replaces those fixed rules by the value of information (`learning.value`): a task type
is judged while further verdicts are expected to be worth their cost, then only audited systematically;
a local task type whose change-point test leans toward a drift is judged more (`watch`: until the test decides,
or until accepted verdicts have answered a lone rejection); `value.audit_budget` audits more while evaluation is
cheap against the savings (`learning.audit_budget`). Free evidence (a verifier's verdict on the local answer, a
user's rating) moves the same posterior as it comes, so paid judge calls are only needed where it is missing.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, sub
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tierwise.learning.audit_budget import AuditBudget, boosted, boosted_systematic, expected_watch
from tierwise.learning.boundary import Boundary, BoundarySettings, Move, TaskState, Tier, beta_cdf, beta_lower
from tierwise.learning.drift import check_step, model_back, recheck_rate, threshold, weights
from tierwise.learning.key_share import KeyShare
from tierwise.learning.loop_state import STATE_VERSION, load_state
from tierwise.learning.near_rank import NearRank
from tierwise.learning.order import GainOrder, OrderSettings
from tierwise.learning.request_bound import request_tier
from tierwise.learning.request_model_settings import RequestModelSettings, make_request_model
from tierwise.learning.schedule import Decision, EvaluationSchedule, ScheduleSettings, systematic, unit_hash
from tierwise.learning.value import (
    ValueSettings,
    audit_stretch,
    detect_interval,
    explore_cost,
    pooled_prior,
    worth_sampling,
)
from tierwise.learning.within import WithinSettings, WithinType

log = logging.getLogger("tierwise")
EWMA = 0.05  # weight of a new cost observation in the measured costs
PENDING_SIGNALS = 4096  # standardised signals kept for requests whose verdict may still come
TEXT_MEAN_RATE = 0.02  # `request_model.cap: half`: weight of a request in its type's running mean text estimate


class LoopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sampling: Literal["rules", "value"] = Field("rules", description=(
        "rules: the fixed schedule (first uses, 10-20% sample, audits); value: by value of information"))
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    boundary: BoundarySettings = Field(default_factory=BoundarySettings)
    value: ValueSettings = Field(default_factory=ValueSettings)
    within: WithinSettings = Field(default_factory=WithinSettings)
    request_model: RequestModelSettings = Field(default_factory=RequestModelSettings)
    order: OrderSettings = Field(default_factory=OrderSettings)


@dataclass(frozen=True)
class Plan:
    tier: Tier
    judge: bool  # judge the local answer (served, or from a shadow run)
    shadow: bool  # run the local tier in the background for a frontier-routed request
    reason: str
    explore: bool = False  # a frontier task type's request served locally to be judged (`explore: serve`)


def decision_reason(task_type: str, st: Any, plan: Plan) -> str:
    """The trace's reason: the type's tier and evidence, and the request's own tier when it differs (within-type
    routing, an exploration); before session 37 it read "boundary local" for a type `tierwise boundary` listed on the
    frontier (newuser37)."""
    evidence = f"{st.total_good} good of {st.total_judged} judged" if st else "no evidence yet"
    on = st.tier if st else "frontier"
    this = "" if plan.tier == on else f"; this request {plan.tier} ({plan.reason})"
    return f"{task_type}: boundary {on} ({evidence}){this}"


class LearningLoop:
    def __init__(self, route: str, settings: LoopSettings | None = None, *, log_path: str | None = None) -> None:
        self.route = route
        self.settings = settings or LoopSettings()
        self.schedule = EvaluationSchedule(self.settings.schedule)
        self.boundary = Boundary(self.settings.boundary, log_path=log_path, route=route)
        self.seen: dict[str, int] = {}  # requests per task type (both tiers): its share of the traffic
        self.audit_credit: dict[str, float] = {}  # `audit: margin`: accumulated audit rate per local task type
        self.budget = AuditBudget(self.settings.value.audit_window)  # `value.audit_budget`: evaluation and savings
        self.within = WithinType(self.settings.within)
        self.request_model = make_request_model(self.settings.request_model)
        self.order = GainOrder(self.settings.order) if self.settings.order.kind != "acceptance" else None
        w = self.settings.within
        self.near = (NearRank(w.near_window, w.near_band, w.near_min_verdicts, w.near == "held")
                     if w.near != "off" else None)
        self._signals: OrderedDict[str, float] = OrderedDict()  # request id -> standardised signal
        # per type, by key name: its clients and evidence (a key gives at most `boundary.key_share`: `counts_from`)
        self.keys = KeyShare(self.settings.boundary)
        self._judged_by: OrderedDict[str, str] = OrderedDict()  # judged request id -> its key name
        self._forecasts: dict[str, tuple[float, float]] | None = None  # during `plan`: each type's forecast
        self._z_move: tuple[float, float] = (math.nan, math.nan)  # (boundary.credible, its normal quantile)
        self.total = 0
        self.served_local: dict[str, int] = {}  # `request_model.judge_served`: per frontier type, requests served locally
        self.text_mean: dict[str, float] = {}  # `request_model.cap: half`: the text model's running mean per type
        v = self.settings.value
        # measured costs (USD): a frontier and a local request, a judge call, a shadow run; settings win
        self.costs: dict[str, float | None] = {"frontier": None, "local": None, "judge": v.judge_usd,
                                               "shadow": v.shadow_usd}

    def observe_cost(self, kind: str, usd: float | None) -> None:
        """A measured cost (kind: frontier, local, judge, shadow) for the value of information."""
        if usd is None or usd < 0 or kind not in self.costs:
            return
        fixed = {"judge": self.settings.value.judge_usd, "shadow": self.settings.value.shadow_usd}.get(kind)
        if fixed is not None:
            return
        old = self.costs[kind]
        self.costs[kind] = usd if old is None else (1 - EWMA) * old + EWMA * usd

    def saving(self) -> float:
        v = self.settings.value
        if v.saving_usd is not None:
            return v.saving_usd
        f, loc = self.costs["frontier"], self.costs["local"]
        return max(0.0, (f or 0.0) - (loc or 0.0)) if f is not None else 0.0

    def key(self, task_type: str) -> tuple[str, str, str]:
        return (self.route, task_type, "local")

    def unlikely_local(self, task_type: str) -> bool:
        st = self.boundary.states.get(task_type)
        if st is None or st.judged < self.settings.schedule.shadow_stop_after:
            return False
        upper = beta_lower(st.a, st.b, self.settings.schedule.shadow_stop_quantile)
        return upper < self.settings.boundary.quality_target

    def plan(self, task_type: str, request_id: str, *, negative_feedback: bool = False,
             signal: float | None = None, text: str | None = None, key: str = "") -> Plan:
        """The tier and evaluation of one request; `signal` is a prompt-level difficulty signal (the log of the
        prompt's length in the reflective route) used by `within` when enabled; `text` the prompt, read by the
        `request_model` when enabled; `key` the name of the gateway key that sent it (one key's verdicts hold a
        bounded share of the request model's rows)."""
        # a decision reads a type's forecast up to three times, moving no evidence: the pooled sums are taken once
        self._forecasts = {}
        try:
            return self._plan(task_type, request_id, negative_feedback, signal, text, key)
        finally:
            self._forecasts = None

    def _plan(self, task_type: str, request_id: str, negative_feedback: bool, signal: float | None,
              text: str | None, key: str) -> Plan:
        self.seen[task_type] = self.seen.get(task_type, 0) + 1
        self.total += 1
        self.keys.saw(task_type, key)
        p = self._type_plan(task_type, request_id, negative_feedback)
        if p.judge and not negative_feedback and not self.counts_from(task_type, key):
            p = Plan(p.tier, False, False, "key-share")  # this key gave its share of the type's evidence
        z = None
        if signal is not None and self.settings.within.enabled and math.isfinite(signal):
            z = self.within.standardise(task_type, signal)
            self._remember_signal(request_id, z)
        rm = self.request_model
        # the prompt's features (its hashed tokens: most of a decision's cost) are read only when the decision uses
        # them: for the text model's estimate, or to train on a request the loop judges
        read = rm is not None and bool(text)
        feats = None
        if z is not None or (read and rm is not None and rm.ready):
            st = self.boundary.state(task_type)
            # a type the boundary has moved back to the frontier (a drift, or its acceptance fell below the target:
            # it has moved, `total_judged > judged`, and is on the frontier) is left to its own evidence until it
            # moves local again: verdicts pooled over every type must not keep serving it locally
            moved_back = st.tier == "frontier" and st.total_judged > st.judged
            if moved_back and self.settings.within.moved_back == "type":
                # nor its prompt signal: a move back by the below-target rule keeps the pre-drift verdicts, so the
                # type's mean can sit just under the target and the slope lift a fixed share of its requests over it
                accept = own = st.mean()
            else:
                accept = own = self.within.acceptance(task_type, st.mean(), z or 0.0)
            q = None
            # `request_model.after_move_back: below-target`: a type moved back only by the below-target rule (never
            # by the change-point test) is left to the text model as a never-moved frontier type is
            back = self._model_back(st) if moved_back else 0  # (`checked`: 2 while its check is undecided)
            model_off = moved_back and not back
            if read and rm is not None and rm.ready and not model_off:
                feats = rm.features(text or "", task_type)
                q = rm.estimate(feats)
                if q is not None:
                    if self.settings.request_model.type_offset is not None:
                        # the type's own verdicts correct the pooled model's level for its requests
                        q = min(1.0, max(0.0, q + rm.offset(task_type)))
                    q = self._capped(task_type, st, q)
            if q is not None:
                w = self.settings.request_model.weight
                if self.settings.request_model.combine == "within":
                    # the type's slope moves the blend of its mean and the text model's (the level from the
                    # text model, the move inside the type from the prompt signal)
                    accept = self.within.acceptance(task_type, (1.0 - w) * st.mean() + w * q, z or 0.0)
                else:
                    accept = (1.0 - w) * accept + w * q
            target = self.settings.boundary.quality_target
            tier: Tier
            bound = self.settings.request_model.bound
            if bound != "none" and self.order is None:
                sd = rm.sd(feats) if (bound == "model" and st.tier == "frontier" and q is not None and rm is not None
                                      and feats is not None) else None
                if sd is not None:
                    sd *= self.settings.request_model.weight  # the text model's part of the blend
                tier = request_tier(st, accept, self.settings.boundary, sd)  # the boundary's rule, on the request
            else:
                tier = "local" if accept >= target else "frontier"
            if self.near is not None and not (moved_back and st.drifted):  # `within.near`
                tier = self.near.tier(task_type, st, accept, target, unit_hash(request_id, "near-tie")) or tier
            if self.order is not None and not moved_back:
                if st.total_judged >= self.settings.order.min_verdicts:
                    # the frontier share the loop's own estimate gives, filled by the blended estimate (`share`)
                    # or by gain (`gain`: three-way verdicts on shadow pairs)
                    tier = "local" if self.order.tier_local(task_type, own, target,
                                                            unit_hash(request_id, "order-tie"),
                                                            ordering=accept) else "frontier"
                else:
                    # too few verdicts of its own to be reordered: the loop's own estimate decides, as it would
                    # without a request model (the blend must not send a new type local before its own evidence)
                    tier = "local" if own >= target else "frontier"
            if tier != p.tier:
                # the request's own estimate puts it on the other side of the target than its type; whether it
                # is judged stays the type's decision (so the verdicts remain a fair sample of the type), and a
                # verdict on a frontier-served request comes from a shadow run
                p = Plan(tier, p.judge, p.judge and tier == "frontier", p.reason + " (within-type)" if p.judge
                         else "within-type")
                if tier == "local" and q is not None and not p.judge and self._judge_served(task_type, request_id, key):
                    p = Plan("local", True, False, "served-sample (within-type)")
                elif (tier == "local" and back == 2 and not p.judge and self.counts_from(task_type, key)
                      and (not st.check_decided or unit_hash(request_id, "move-back-recheck") < recheck_rate(
                          st.check, math.log(self.settings.request_model.check_odds)))):
                    # (re-opened after its decision: judged in proportion to how far it has gone toward the drop)
                    p = Plan("local", True, False, "move-back-check (within-type)")
                elif (tier == "local" and back == 1 and not p.judge and self.counts_from(task_type, key)
                      and self.settings.request_model.check_recheck
                      and unit_hash(request_id, "move-back-audit") < self.settings.schedule.audit_rate):
                    # served locally once the check decided: audited as a local type is (a rejection re-opens it)
                    p = Plan("local", True, False, "move-back-audit (within-type)")
        if p.shadow and p.reason != "negative-feedback" and self._serve_explore(task_type, z):
            # the verdict costs less if the local tier answers this request than if it runs in the shadow
            p = Plan("local", True, False, p.reason + " (served)", explore=True)
        if p.judge and read and rm is not None and p.reason != "negative-feedback":
            if feats is None:
                feats = rm.features(text or "", task_type)
            rm.remember(request_id, feats, key, task_type)  # its verdict, bought by the loop, becomes a training row
        if p.judge and key:
            self._judged_by[request_id] = key
            while len(self._judged_by) > PENDING_SIGNALS:
                self._judged_by.popitem(last=False)
        self.budget.note(p.judge, p.shadow, p.tier == "local", self.costs, self.saving())
        return p

    def _model_back(self, st: TaskState) -> int:
        """Whether the text model serves a type moved back to the frontier: `drift.model_back`."""
        return model_back(self.settings.request_model, st)

    def _judge_served(self, task_type: str, request_id: str, key: str) -> bool:
        """`request_model.judge_served`: a frontier type's request the text model serves locally is judged among the
        first M of its type, then on the `judge_served_rate` sample (the type's verdicts then grow where the model
        spends quality, which the type's value of information, settled on the frontier, no longer pays for)."""
        rs = self.settings.request_model
        if rs.judge_served is None:
            return False
        n = self.served_local[task_type] = self.served_local.get(task_type, 0) + 1
        rate = self.settings.schedule.sample_rate if rs.judge_served_rate is None else rs.judge_served_rate
        if n > rs.judge_served and unit_hash(request_id, "served-sample") >= rate:
            return False
        return self.counts_from(task_type, key)

    def _capped(self, task_type: str, st: TaskState, q: float) -> float:
        """The text model's estimate q under `request_model.cap`."""
        cap = self.settings.request_model.cap
        if cap == "none":
            return q
        if cap == "credible":
            return min(q, self._type_upper(st))
        # `half`: the model's running mean estimate over the type's requests; on a type credibly below the target
        # only the requests it rates above that mean keep their estimate
        m = self.text_mean.get(task_type, q)
        self.text_mean[task_type] = m + TEXT_MEAN_RATE * (q - m)
        if q >= m:
            return q
        return min(q, self._type_upper(st))

    def _type_upper(self, st: TaskState) -> float:
        """The upper edge of a type's own two-sided credible interval (`request_model.cap: credible`)."""
        mass = self.settings.request_model.cap_credible or self.settings.boundary.credible
        return beta_lower(st.a, st.b, (1.0 + mass) / 2.0)

    def _remember_signal(self, request_id: str, z: float) -> None:
        self._signals[request_id] = z
        while len(self._signals) > PENDING_SIGNALS:
            self._signals.popitem(last=False)

    def _type_plan(self, task_type: str, request_id: str, negative_feedback: bool) -> Plan:
        tier = self.boundary.tier(task_type)
        key = self.key(task_type)
        if self.settings.sampling == "value":
            d = self._value_decision(task_type, tier, negative_feedback, request_id)
            return Plan(tier, d.judge, d.judge and tier == "frontier", d.reason)
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

    def _serve_explore(self, task_type: str, z: float | None = None) -> bool:
        """`explore: serve`: a request whose verdict would need a shadow run is answered by the local tier instead
        when its type has evidence of its own and the quality the answer is expected to give up (at the route's
        exchange rate; the type's forecast, moved by the request's signal under `within`) costs less than a
        shadow run."""
        v = self.settings.value
        if v.explore != "serve":
            return False
        if self.boundary.state(task_type).total_judged < v.explore_after:
            return False
        shadow = self.costs["shadow"]
        if shadow is None:
            return False
        a, b = self._forecast(task_type)
        accept = a / (a + b) if z is None else self.within.acceptance(task_type, a / (a + b), z)
        return explore_cost(self.saving(), self.settings.boundary.quality_target, accept) < shadow

    def _value_decision(self, task_type: str, tier: Tier, negative_feedback: bool, request_id: str) -> Decision:
        if negative_feedback:
            return Decision(True, "negative-feedback")
        b = self.boundary
        st = b.state(task_type)
        s = self.settings
        uses = self.seen[task_type]
        # `returned: light`: a local type sent back below the target before, its posterior mean under the target, gets
        # no value-of-information verdicts and the change-watch at `lean`'s rate (its audits and move back unchanged)
        returned = (tier == "local" and st.sent_back > 0 and s.value.returned == "light"
                    and st.mean() < s.boundary.quality_target)
        if tier == "local" and st.cusum.watching():
            # the change-point test leans toward a drift: judge in proportion to how far it has gone to firing
            if unit_hash(request_id, "watch") < self._watch_rate(st, lean=returned):
                return Decision(True, "change-watch")
        per_request = s.value.per_request and s.within.enabled
        if per_request and st.total_judged < s.schedule.first_uses:
            # the issue's first uses: every type gets its own verdicts before its requests' tiers are left to the
            # value of information (which, per request, would not pay for them on a type far from the target)
            return Decision(True, "first-use")
        a, bb = self._forecast(task_type)
        target = s.boundary.quality_target
        below = beta_cdf(a, bb, target)
        settled = (below if tier == "local" else 1.0 - below) < s.value.settled
        # `reexplore: sample`: a frontier type sent back below the target before is judged on the `sample_rate` hash
        # sample of the requests the value of information would judge, not on every one of them
        thinned = (tier == "frontier" and st.sent_back > 0 and s.value.reexplore == "sample"
                   and unit_hash(request_id, "reexplore") >= s.schedule.sample_rate)
        if not settled and not returned and not thinned:
            saving = self.saving()
            future = s.value.horizon * uses / self.total
            stake = saving / (1.0 - target) * future
            cost = self._verdict_cost(task_type, tier, a, bb)
            credible, z = self._z_move
            if credible != s.boundary.credible:  # the normal quantile of the credible mass, once per setting
                z = NormalDist().inv_cdf(1.0 - (1.0 - s.boundary.credible) / 2.0)
                self._z_move = (s.boundary.credible, z)
            if worth_sampling(a, bb, target, stake, cost, tier=tier, n_own=st.a + st.b, z_move=z,
                              per_request=per_request, slope=self.within.slope(task_type) if per_request else 0.0):
                return Decision(True, "value")
        rate = s.schedule.audit_rate if tier == "local" else s.schedule.shadow_audit_rate
        budget, v = s.value.audit_budget, s.value
        boost = (tier == "local" and budget is not None and self.budget.under(budget)
                 and (v.audit_goal is None or self.budget.within_goal(v.audit_goal, v.horizon))
                 and boosted(st, s.schedule, v.audit_boost_for))
        if tier == "local" and v.audit != "fixed":
            # a varying rate: spaced by accumulated rate, not by `uses` modulo a step that would jump as it changes
            rate *= v.audit_boost if boost else 1.0  # headroom under the budget: denser audits
            if v.audit == "margin":
                rate /= audit_stretch(st.mean(), target, v.audit_stretch)
            elif v.audit == "detect":  # as sparse as detecting a drop within `detect_within` allows
                rate = 1.0 / detect_interval(st.mean(), target, s.boundary.drift_credible, v.detect_within)
            credit = self.audit_credit.get(task_type, unit_hash(f"{self.route}\x00{task_type}", "audit-offset")) + rate
            self.audit_credit[task_type] = credit - 1.0 if credit >= 1.0 else credit
            extra = 1.0 - 1.0 / v.audit_boost if boost and credit >= 1.0 else 0.0  # the boost's share of its audits
            hit = credit >= 1.0
        else:  # every 1/rate-th use; under the boost, `audit_boost` - 1 more between each two (`boosted_systematic`)
            key = f"{self.route}\x00{task_type}"
            hit, extra = boosted_systematic(uses, rate, v.audit_boost, key) if boost else (systematic(uses, rate, key), 0.0)
        if hit:
            if extra and v.audit_charge == "watch":  # what its rejection is expected to set off, paid ahead
                judge = self.costs["judge"]
                self.budget.charge(extra * (self.saving() if judge is None else judge) * expected_watch(st.mean(), target))
            return Decision(True, "audit")
        return Decision(False, "skip-settled" if settled else ("skip-reexplore" if thinned else "skip-value"))

    def _watch_rate(self, st: TaskState, *, lean: bool = False) -> float:
        """The share of a local type's requests judged while its change-point test leans toward a drift: in
        proportion to how far the statistic has gone to firing (`watch: lean`). A healthy type's lone rejected
        audit then costs the several verdicts it takes to bring the statistic back to zero. With `watch: confirm`
        the watch stops once `confirmations` accepted verdicts have answered a lone rejection (the statistic
        below one rejection's worth less `confirmations` - 1 acceptances' worth) and the audits wear the rest
        down; a second rejection brings it back. With `watch: decide` (and under `audit: detect`) every request
        is judged while the statistic is above zero. `lean`: that rate whatever `watch` says (`returned: light`)."""
        c = st.cusum
        s = self.settings
        if c.s <= 0.0:
            return 1.0  # a run inside its `boundary.drift_window` with its sum at or below zero: judged until it ends
        if not lean and (s.value.audit == "detect" or s.value.watch == "decide"):
            # every request until the test decides (`audit: detect`'s spacing counts on it; `watch: decide` runs
            # it beside any spacing, so a drift is not left waiting for the next audit's rejection)
            return 1.0
        rate = c.s / threshold(s.boundary.drift_credible)
        if lean or s.value.watch == "lean":
            return rate
        rejection, acceptance = weights(c.p0, s.boundary.quality_target)
        floor = rejection - (s.value.confirmations - 1) * acceptance
        return rate if c.s >= floor - 1e-9 else 0.0  # a tolerance for rounding

    def _verdict_cost(self, task_type: str, tier: Tier, a: float, b: float) -> float:
        saving, target = self.saving(), self.settings.boundary.quality_target
        judge, shadow = self.costs["judge"], self.costs["shadow"]
        cost = saving if judge is None else judge  # not measured yet: about what a local answer saves
        if tier == "frontier":
            cost += min(shadow or 0.0, explore_cost(saving, target, a / (a + b))) \
                if self._serve_explore(task_type) else (shadow or 0.0)
        return cost

    def _forecast(self, task_type: str) -> tuple[float, float]:
        """The task type's own (discounted) evidence on top of a pooled acceptance: the route's (every type's), or
        with `pool: parent` its siblings' (the other types sharing its name prefix), worth `pooled_strength`
        verdicts or, with `pool_strength: estimated`, as many as the spread between the pooled types says."""
        memo = self._forecasts
        if memo is None:
            return self._pooled_forecast(task_type)
        got = memo.get(task_type)
        if got is None:
            got = memo[task_type] = self._pooled_forecast(task_type)
        return got

    def _pooled_forecast(self, task_type: str) -> tuple[float, float]:
        bs = self.settings.boundary
        v = self.settings.value
        k = v.pooled_strength
        st = self.boundary.state(task_type)
        ea, eb = st.a - bs.prior_accept, st.b - bs.prior_reject
        if k <= 0.0 and v.pool_strength == "fixed":
            return st.a, st.b
        states = self.boundary.states
        pool = None
        if v.pool == "parent" and "/" in task_type:
            parent = task_type.rsplit("/", 1)[0] + "/"
            pool = [x for t, x in states.items() if t != task_type and t.startswith(parent)
                    and "/" not in t[len(parent):]]
        if not pool or all(x.a - bs.prior_accept + x.b - bs.prior_reject <= 0.0 for x in pool):
            pool = list(states.values())
        if v.pool_strength == "estimated":
            ev = [(x.a - bs.prior_accept, x.b - bs.prior_reject) for x in pool]
            est = pooled_prior(ev, k, v.pooled_strength_max)
            if est is not None:
                m0, k = est
                return ea + k * m0, eb + k * (1.0 - m0)
            if k <= 0.0:
                return st.a, st.b
        # every pooled type's evidence above the prior, summed in order by C-level maps (no bytecode per type: a
        # decision reads it for a route's every type)
        n = len(pool)
        ta = sum(map(sub, map(attrgetter("a"), pool), repeat(bs.prior_accept, n)))
        tb = sum(map(sub, map(attrgetter("b"), pool), repeat(bs.prior_reject, n)))
        m0 = (ta + bs.prior_accept) / (ta + tb + bs.prior_accept + bs.prior_reject)
        return ea + k * m0, eb + k * (1.0 - m0)

    def free_verdict(self, task_type: str, accepted: float, *, request_id: str | None = None,
                     at: float | None = None, key: str = "") -> Move | None:
        """Evidence that cost nothing (a verifier's verdict on a served local answer, a user's rating, given with
        the name of the gateway key that rated): it moves the posterior like a judge's verdict, before any paid
        call is considered."""
        return self._observe(task_type, accepted, key, request_id, at)

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "route": self.route, "boundary": self.boundary.dump(),
                "schedule": self.schedule.dump(), "seen": dict(self.seen), "total": self.total,
                "costs": dict(self.costs), "within": self.within.dump(),
                "audit_credit": dict(self.audit_credit), "audit_budget": self.budget.dump(), "keys": self.keys.dump(),
                "served_local": dict(self.served_local),
                "request_model": self.request_model.dump() if self.request_model is not None else None,
                "order": self.order.dump() if self.order is not None else None}

    def load(self, data: dict[str, Any]) -> None:
        load_state(self, data)

    def _moved_types(self) -> set[str]:
        """The task types the boundary has moved (local now, or on the frontier after a move: `total_judged` counts
        verdicts before the last move; or named in the boundary log's moves)."""
        b = self.boundary
        return (set(b.moved)
                | {t for t, st in b.states.items() if st.tier == "local" or st.total_judged > st.judged})

    def save(self, path: str | Path, data: dict[str, Any] | None = None) -> None:
        """Write the learned state (or a `dump` taken earlier) atomically: a crash mid-write leaves the
        previous file."""
        from tierwise.atomic_file import write_json

        write_json(path, self.dump() if data is None else data, sort_keys=True)

    def restore(self, path: str | Path) -> bool:
        p = Path(path)
        if not p.exists():
            return False
        try:
            self.load(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            log.warning("learning: could not read the saved boundary state: %s", type(e).__name__)
            return False
        return True

    def verdict(self, task_type: str, accepted: float, *, request_id: str | None = None,
                at: float | None = None, feedback: bool = False, comparison: str | None = None) -> Move | None:
        """Record a verdict on a local answer of `task_type`; returns the boundary move it caused, if any.
        A verdict prompted by negative feedback (a biased sample) re-opens the pair but moves nothing.
        `comparison` is a judge's three-way verdict on a shadow pair (local / tie / frontier better), read by
        `order: gain`; `accepted` must agree with it (not frontier better)."""
        # re-opening matters where the local tier serves: that is where a drift hurts users
        self.schedule.record(self.key(task_type), accepted >= 0.5, feedback=feedback,
                             reopen=self.boundary.tier(task_type) == "local")
        if feedback:
            return None
        key = self._judged_by.pop(request_id, "") if request_id is not None else ""
        if comparison is not None and self.order is not None:
            self.order.record(task_type, comparison)
        return self._observe(task_type, accepted, key, request_id, at)

    def _observe(self, task_type: str, accepted: float, key: str, request_id: str | None,
                 at: float | None) -> Move | None:
        """A verdict that counts, from a request of the key named `key`, into the posterior; a move it would cause
        waits while one key's evidence would decide it alone (`KeyShare.decides_alone`)."""
        self._note_evidence(task_type, key)
        self._record_signal(task_type, accepted, request_id)
        move = self.boundary.observe(task_type, accepted, at=at, request_id=request_id, key=key,
                                     hold=lambda why, run: self.keys.decides_alone(task_type, why, run),
                                     current=lambda: self.keys.clients(task_type) | {key})
        st, rs = self.boundary.state(task_type), self.settings.request_model
        if move is None and st.tier == "frontier" and st.sent_back > 0 and st.drifted == 0:  # the move-back check
            h = math.log(rs.check_odds) if rs.check_recheck else math.inf  # (round 29: the sum, never floored)
            st.check = check_step(st.check, accepted >= 0.5, self.settings.boundary.quality_target, h, rs.check_margin)
            st.check_run = 0 if st.check <= -h else st.check_run + 1
            st.check_decided = st.check_decided or st.check_run == 0
        if move is not None and self.request_model is not None:
            # `request_model.frontier_label`: a type that has moved is read by its words alone from now on
            self.request_model.unlabelled.add(task_type)
        if move is not None and (move.why == "drift" or (move.why == "below-target"
                                                          and self.settings.boundary.move_back_keep is not None)):
            # the posterior kept only the run after the change, or (`move_back_keep`) a few verdicts' worth
            bs, st = self.settings.boundary, self.boundary.state(task_type)
            self.keys.rescale(task_type, st.a - bs.prior_accept + st.b - bs.prior_reject)
        return move

    def _note_evidence(self, task_type: str, key: str) -> None:
        self.keys.note(task_type, key)

    def counts_from(self, task_type: str, key: str) -> bool:
        """Whether a piece of evidence on `task_type` offered by a request of the gateway key named `key` may count
        (`KeyShare.counts_from`)."""
        return self.keys.counts_from(task_type, key)

    def _record_signal(self, task_type: str, accepted: float, request_id: str | None) -> None:
        if self.request_model is not None:
            self.request_model.record(request_id, accepted)
        z = self._signals.pop(request_id, None) if request_id is not None else None
        if z is not None:
            self.within.record(task_type, z, accepted, self.boundary.state(task_type).mean())
