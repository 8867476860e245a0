"""The evaluation budget of a route's audits (`value.audit_budget`): the loop's own running account of what its
evaluation has cost and what serving locally has saved, so the audits of local task types can be made denser
while, and only while, the evaluation spent so far is under a share of the savings so far.

Why: a drift on an established local type is found at its first rejected audit (audits are the only verdicts
such a type gets), so with audits every 50 uses and a drifted acceptance near 0.4 some drifts go unseen for
200 or more of the type's requests by luck alone. More audits are the only cure the replay's evidence allows,
and they cost; the account spends on them only the headroom the route's evaluation goal leaves (a route whose
evaluation is already at the budget audits exactly as before). The account is the loop's planned spend: each
judge call and shadow run at the route's judge and shadow costs (measured, or the settings'), each locally
served request at the route's saving; nothing the deployed route does not know.

Round 39 found the account bounded the audits but not what their rejections set off (the change-watch's verdicts,
moves of near-target types), so on some seeds the evaluation ran past the goal after the boost had stopped. Two
answers (round 40): `audit_charge: watch` charges each extra audit, when planned, with the watch verdicts its
rejection is expected to set off (`expected_watch`), and `audit_boost_for: established` keeps the boost for types
far enough above the target that a rejection is rarely anything but a drift.

Round 41's `audit_window` lets the boost act after the cold start, but then spends on seeds whose whole-stream share
was already near the issue's 10% goal. `audit_goal` (round 42) guards that goal itself: the boost also stops while
the share projected over the traffic ahead (the account since the start plus the window's recent rates of spending
and saving over `value.horizon` more requests) is at or over it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tierwise.learning.drift import weights
from tierwise.learning.schedule import unit_hash

if TYPE_CHECKING:
    from tierwise.learning.boundary import TaskState
    from tierwise.learning.schedule import ScheduleSettings

MAX_WATCH = 100.0  # the most verdicts one rejection is expected to set off (a type at the drop's own acceptance)


def expected_watch(p0: float, target: float) -> float:
    """The change-watch verdicts one audit of a type accepted at rate `p0` is expected to set off on an unchanged
    model: its rejection rate times the verdicts the change-point test needs to come back to zero from one
    rejection, by Wald's approximation (the rejection's weight over the test's drift per verdict, the
    Kullback-Leibler divergence of the no-change and drop acceptances)."""
    p0 = min(max(p0, 0.02), 0.99)
    rejection, acceptance = weights(p0, target)
    drift = p0 * acceptance - (1.0 - p0) * rejection
    return (1.0 - p0) * (min(MAX_WATCH, rejection / drift) if drift > 0.0 else MAX_WATCH)


def boosted_systematic(uses: int, rate: float, boost: float, key: str) -> tuple[bool, float]:
    """The fixed audit spacing (`schedule.systematic`: every k = round(1 / rate)-th use, at an offset per type) and,
    with `boost` > 1, ceil(boost) - 1 more audits evenly between each two: (audit now, 1.0 if it is one of the extra
    ones). The base audits stay where they are, so a budget the evaluation is over audits exactly as none (round 39
    spaced audits by accumulated rate whenever a budget was set, which moved them even where it never boosted)."""
    if rate <= 0.0:
        return False, 0.0
    k = max(1, round(1.0 / rate))
    pos = (uses + int(unit_hash(key, "audit-offset") * k)) % k
    if pos == 0:
        return True, 0.0
    extra = boost > 1.0 and any(pos == round(j * k / boost) for j in range(1, math.ceil(boost)))
    return extra, 1.0 if extra else 0.0


def established(st: TaskState, schedule: ScheduleSettings) -> bool:
    """`audit_boost_for: established`: the issue's established pair (more than `established_uses` verdicts since the
    type's last move, its posterior mean over `established_acceptance`)."""
    return st.judged > schedule.established_uses and st.mean() > schedule.established_acceptance


def boosted(st: TaskState, schedule: ScheduleSettings, boost_for: str) -> bool:
    """Whether `audit_boost_for` lets the boost audit this local type: every one (`local`), the established ones
    (`established`), or those whose posterior mean is over `established_acceptance` however few their verdicts
    (`mean`, round 41: the busiest type is rarely established when a drift comes, its audits at 2% taking ~1,000 of
    its requests to give 20 verdicts)."""
    if boost_for == "local":
        return True
    if boost_for == "mean":
        return st.mean() > schedule.established_acceptance
    return established(st, schedule)


class AuditBudget:
    def __init__(self, window: int | None = None) -> None:
        self.spent = 0.0  # USD of judge calls and shadow runs the loop has planned
        self.saved = 0.0  # USD the locally served requests saved against the frontier
        # `audit_window`: both sums forget at 1/window per request, so the account reads the recent evaluation share,
        # not one the cold start's exploration holds over 8% until the middle of the replay (round 41)
        self.keep = 1.0 - 1.0 / window if window else 1.0
        self.window = window
        self.total_spent = 0.0  # both since the start, whatever the window (`audit_goal`)
        self.total_saved = 0.0

    def note(self, judged: bool, shadow: bool, local: bool, costs: dict[str, float | None], saving_usd: float) -> None:
        """One request's plan: its evaluation at the route's `costs` (a judge call not yet measured counts as a
        request's saving, as the value of information prices it) and, when served locally, its saving."""
        judge_usd, shadow_usd = costs.get("judge"), costs.get("shadow")
        if self.keep < 1.0:
            self.spent *= self.keep
            self.saved *= self.keep
        spend = (saving_usd if judge_usd is None else judge_usd) if judged else 0.0
        spend += (shadow_usd or 0.0) if shadow else 0.0
        self.spent += spend
        self.total_spent += spend
        if local:
            self.saved += saving_usd
            self.total_saved += saving_usd

    def charge(self, usd: float) -> None:
        """Evaluation the loop expects a plan to set off later (`audit_charge`), counted when it is planned."""
        self.spent += usd
        self.total_spent += usd

    def under(self, share: float) -> bool:
        """Whether the evaluation so far is under `share` of the savings so far."""
        return self.saved > 0.0 and self.spent < share * self.saved

    def within_goal(self, goal: float, ahead: int) -> bool:
        """Whether the evaluation share projected `ahead` requests on is under `goal`: the sums since the start plus
        the window's recent rates (its sums over `window`) times `ahead`; without a window, the share so far."""
        spent, saved = self.total_spent, self.total_saved
        if self.window:
            spent += self.spent * ahead / self.window
            saved += self.saved * ahead / self.window
        return saved > 0.0 and spent < goal * saved

    def dump(self) -> dict[str, float]:
        return {"spent": self.spent, "saved": self.saved, "total_spent": self.total_spent,
                "total_saved": self.total_saved}

    def load(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        spent, saved = _amount(data.get("spent")), _amount(data.get("saved"))
        if spent is None or saved is None:
            return
        self.spent, self.saved = spent, saved
        # states saved before round 42 have no totals: their (cumulative, or windowed) sums stand in
        total_spent, total_saved = _amount(data.get("total_spent", spent)), _amount(data.get("total_saved", saved))
        if total_spent is not None and total_saved is not None:
            self.total_spent, self.total_saved = total_spent, total_saved


def _amount(v: Any) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 <= v <= 1e12
    return float(v) if ok else None


__all__ = ["AuditBudget", "boosted", "boosted_systematic", "established", "expected_watch"]
