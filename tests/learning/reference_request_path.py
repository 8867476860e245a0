"""A reflective route's per-request decision as it was on main at 20c85ba (session 22, round 14's defaults), kept
as the reference the faster path is compared with (tests/learning/test_request_path_equivalence.py): the prompt's
bucket counts by numpy's `unique`, the text model's estimate as it was, a type's pooled forecast recomputed at each
of its reads, the value of a batch of verdicts one `evsi` call at a time and the normal quantile of the credible
mass taken per decision. Everything else is the code under test (`LearningLoop`, `TextAcceptance`): only these
methods are the old ones (`plan`: the prompt's features read on every request that has text).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from tierwise.learning.boundary import Tier, beta_cdf
from tierwise.learning.loop import PENDING_SIGNALS, LearningLoop, Plan
from tierwise.learning.request_bound import request_tier
from tierwise.learning.request_model import TextAcceptance
from tierwise.learning.schedule import Decision, systematic, unit_hash
from tierwise.learning.value import BATCHES, audit_stretch, evsi_per_request, pooled_prior
from tierwise.routers.features import token_hashes


def normal_loss(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) - z * 0.5 * math.erfc(z / math.sqrt(2.0))


def evsi(a: float, b: float, target: float, m: int, stake: float, *, tier: str = "local", n_own: float | None = None,
         z_move: float = 0.0) -> float:
    n = a + b
    mean = a / n
    var = a * b / (n * n * (n + 1.0))
    sd_m = math.sqrt(var * m / (n + m))
    if sd_m <= 0.0:
        return 0.0
    if tier == "local":
        return stake * sd_m * normal_loss((mean - target) / sd_m)
    own = n if n_own is None else n_own
    c_m = z_move * math.sqrt(mean * (1.0 - mean) / (own + m + 1.0))
    d = (target + c_m - mean) / sd_m
    phi = math.exp(-0.5 * d * d) / math.sqrt(2.0 * math.pi)
    return max(0.0, stake * ((mean - target) * (0.5 * math.erfc(d / math.sqrt(2.0))) + sd_m * phi))


def worth_sampling(a: float, b: float, target: float, stake: float, cost: float, *, tier: str = "local",
                   n_own: float | None = None, z_move: float = 0.0, per_request: bool = False,
                   slope: float = 0.0) -> bool:
    if stake <= 0.0:
        return False
    if cost <= 0.0:
        return True
    if per_request and (tier == "local" or a / (a + b) >= target):
        return any(evsi_per_request(a, b, target, m, stake, slope) > m * cost for m in BATCHES)
    return any(evsi(a, b, target, m, stake, tier=tier, n_own=n_own, z_move=z_move) > m * cost for m in BATCHES)


class ReferenceTextAcceptance(TextAcceptance):
    def features(self, text: str, task_type: str = "") -> tuple[Any, ...]:
        s = self.settings
        if s.features == "embedding":
            idx, cnt = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        else:
            h = token_hashes(text[: s.max_chars])
            i, c = np.unique(h & (s.n_buckets - 1), return_counts=True)
            idx, cnt = i.astype(np.int32), c.astype(np.float32)
        if not self.dense:
            return idx, cnt
        emb = None
        if s.features != "hashed":
            if self.embed is None:
                raise AssertionError("the reference is driven with hashed features or a given embedding")
            emb = np.asarray(self.embed(text[: s.max_chars]), dtype=np.float32)
        return idx, cnt, emb, task_type

    def estimate(self, f: tuple[Any, ...]) -> float | None:
        if self.coef is None or self.idf is None:
            return None
        idx, cnt = f[0], f[1]
        tf = 1.0 + np.log(cnt)
        norm = float(np.sqrt(np.dot(tf * self.idf[idx], tf * self.idf[idx]))) or 1.0
        p = self.intercept + float(np.dot(self.coef[idx], tf)) / norm
        if self.coef_dense is not None and len(f) > 2:
            ce, ct = self.coef_dense[:2]  # (a third part: `frontier_label`'s, which came later)
            if ce is not None and f[2] is not None:
                p += float(np.dot(ce, f[2]))
            p += ct.get(f[3], 0.0)
        return min(1.0, max(0.0, p))


class ReferenceLoop(LearningLoop):
    """`LearningLoop` with the old per-request parts (above)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if self.request_model is not None:
            self.request_model = ReferenceTextAcceptance(self.settings.request_model)

    def plan(self, task_type: str, request_id: str, *, negative_feedback: bool = False,
             signal: float | None = None, text: str | None = None, key: str = "") -> Plan:
        self._forecasts = None  # every read of a forecast computes it afresh
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
        feats = rm.features(text, task_type) if rm is not None and text else None
        if z is not None or (feats is not None and rm is not None and rm.ready):
            st = self.boundary.state(task_type)
            accept = own = self.within.acceptance(task_type, st.mean(), z or 0.0)
            moved_back = st.tier == "frontier" and st.total_judged > st.judged
            q = rm.estimate(feats) if feats is not None and rm is not None and not moved_back else None
            if q is not None:
                w = self.settings.request_model.weight
                if self.settings.request_model.combine == "within":
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
            if self.order is not None and not moved_back:
                if st.total_judged >= self.settings.order.min_verdicts:
                    tier = "local" if self.order.tier_local(task_type, own, target,
                                                            unit_hash(request_id, "order-tie"),
                                                            ordering=accept) else "frontier"
                else:
                    tier = "local" if own >= target else "frontier"
            if tier != p.tier:
                p = Plan(tier, p.judge, p.judge and tier == "frontier", p.reason + " (within-type)" if p.judge
                         else "within-type")
        if p.shadow and p.reason != "negative-feedback" and self._serve_explore(task_type, z):
            p = Plan("local", True, False, p.reason + " (served)", explore=True)
        if p.judge and feats is not None and rm is not None and p.reason != "negative-feedback":
            rm.remember(request_id, feats, key)  # its verdict, bought by the loop, becomes a training row
        if p.judge and key:
            self._judged_by[request_id] = key
            while len(self._judged_by) > PENDING_SIGNALS:
                self._judged_by.popitem(last=False)
        # Session 35 (loop39): every plan adds to the route's evaluation account (`value.audit_budget`); the account
        # is state both paths learn, so the reference keeps it as the route does.
        self.budget.note(p.judge, p.shadow, p.tier == "local", self.costs, self.saving())
        return p

    def _forecast(self, task_type: str) -> tuple[float, float]:
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
        ev = [(x.a - bs.prior_accept, x.b - bs.prior_reject) for x in pool]
        if v.pool_strength == "estimated":
            est = pooled_prior(ev, k, v.pooled_strength_max)
            if est is not None:
                m0, k = est
                return ea + k * m0, eb + k * (1.0 - m0)
            if k <= 0.0:
                return st.a, st.b
        ta, tb = sum(a for a, _ in ev), sum(b for _, b in ev)
        m0 = (ta + bs.prior_accept) / (ta + tb + bs.prior_accept + bs.prior_reject)
        return ea + k * m0, eb + k * (1.0 - m0)

    def _value_decision(self, task_type: str, tier: Tier, negative_feedback: bool, request_id: str) -> Decision:
        if negative_feedback:
            return Decision(True, "negative-feedback")
        b = self.boundary
        st = b.state(task_type)
        s = self.settings
        uses = self.seen[task_type]
        if tier == "local" and st.cusum.watching():
            if unit_hash(request_id, "watch") < self._watch_rate(st):
                return Decision(True, "change-watch")
        per_request = s.value.per_request and s.within.enabled
        if per_request and st.total_judged < s.schedule.first_uses:
            return Decision(True, "first-use")
        a, bb = self._forecast(task_type)
        target = s.boundary.quality_target
        below = beta_cdf(a, bb, target)
        settled = (below if tier == "local" else 1.0 - below) < s.value.settled
        if not settled:
            saving = self.saving()
            future = s.value.horizon * uses / self.total
            stake = saving / (1.0 - target) * future
            cost = self._verdict_cost(task_type, tier, a, bb)
            z = NormalDist().inv_cdf(1.0 - (1.0 - s.boundary.credible) / 2.0)
            if worth_sampling(a, bb, target, stake, cost, tier=tier, n_own=st.a + st.b, z_move=z,
                              per_request=per_request, slope=self.within.slope(task_type) if per_request else 0.0):
                return Decision(True, "value")
        rate = s.schedule.audit_rate if tier == "local" else s.schedule.shadow_audit_rate
        if tier == "local" and s.value.audit == "margin":
            rate /= audit_stretch(st.mean(), target, s.value.audit_stretch)
            credit = self.audit_credit.get(task_type, unit_hash(f"{self.route}\x00{task_type}", "audit-offset")) + rate
            self.audit_credit[task_type] = credit - 1.0 if credit >= 1.0 else credit
            if credit >= 1.0:
                return Decision(True, "audit")
        elif systematic(uses, rate, f"{self.route}\x00{task_type}"):
            return Decision(True, "audit")
        return Decision(False, "skip-settled" if settled else "skip-value")
