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
"""

from __future__ import annotations

import math
from typing import Any


class AuditBudget:
    def __init__(self) -> None:
        self.spent = 0.0  # USD of judge calls and shadow runs the loop has planned
        self.saved = 0.0  # USD the locally served requests saved against the frontier

    def note(self, judged: bool, shadow: bool, local: bool, costs: dict[str, float | None], saving_usd: float) -> None:
        """One request's plan: its evaluation at the route's `costs` (a judge call not yet measured counts as a
        request's saving, as the value of information prices it) and, when served locally, its saving."""
        judge_usd, shadow_usd = costs.get("judge"), costs.get("shadow")
        if judged:
            self.spent += saving_usd if judge_usd is None else judge_usd
        if shadow:
            self.spent += shadow_usd or 0.0
        if local:
            self.saved += saving_usd

    def under(self, share: float) -> bool:
        """Whether the evaluation so far is under `share` of the savings so far."""
        return self.saved > 0.0 and self.spent < share * self.saved

    def dump(self) -> dict[str, float]:
        return {"spent": self.spent, "saved": self.saved}

    def load(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        spent, saved = data.get("spent"), data.get("saved")
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 <= v <= 1e12
                 for v in (spent, saved))
        if ok:
            self.spent, self.saved = float(spent), float(saved)  # type: ignore[arg-type]


__all__ = ["AuditBudget"]
