"""The evaluation schedule: which answers of a (route, task type, tier) pair get judged.

The rules, in order (the first that applies decides):
1. after negative feedback on the answer: always;
2. the first `first_uses` uses of the pair: always;
3. a pair re-opened by a poor verdict or negative feedback while it was established: its next
   `reprobe_uses` uses, always (a drift shows up as a poor audit verdict; re-probing finds out fast);
4. an established pair (more than `established_uses` uses and more than `established_acceptance`
   of its last `acceptance_window` verdicts accepted): only the `audit_rate` audit (every
   round(1/audit_rate)-th use by default, `audit_spacing: random` for a hash sample);
5. otherwise: the `sample_rate` sample (10–20%).

Samples are a deterministic hash of the request id (so a replay of the same stream judges the same
answers), with a different salt for the audit sample so the two are independent.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PairKey = tuple[str, str, str]  # (route, task type, tier)


class ScheduleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_uses: int = Field(5, ge=0, le=1000, description="uses of a new (route, task type, tier) always judged")
    sample_rate: float = Field(0.10, ge=0.10, le=0.20, description="share judged once past the first uses")
    audit_rate: float = Field(0.02, ge=0.0, le=0.10, description="share of an established pair still judged")
    audit_spacing: Literal["systematic", "random"] = Field("systematic", description=(
        "systematic: every round(1/audit_rate)-th use (the gap between two audits is bounded, so a drift cannot "
        "hide for long); random: a hash sample of the request ids"))
    shadow_audit_rate: float = Field(0.005, ge=0.0, le=0.10, description=(
        "share of frontier requests still shadowed once a task type is unlikely to reach the target"))
    shadow_stop_quantile: float = Field(0.70, gt=0.5, lt=1.0, description=(
        "a frontier task type stops being shadowed (but for the audit) once this quantile of its "
        "acceptance posterior is below the target: it is unlikely to ever move local"))
    shadow_stop_after: int = Field(20, ge=1, le=10_000, description=(
        "verdicts (since the task type last moved) before shadowing may stop: a few unlucky first verdicts "
        "must not park a task type for good"))
    established_uses: int = Field(20, ge=1, description="a pair is established past this many uses ...")
    established_acceptance: float = Field(0.80, ge=0.0, le=1.0,
                                          description="... and with more than this share of recent verdicts accepted")
    reprobe_uses: int = Field(5, ge=0, le=100, description=(
        "uses judged after a poor verdict on an established pair or negative feedback (0: no re-probing)"))
    acceptance_window: int = Field(20, ge=1, le=10_000, description="verdicts the acceptance share looks back on")


def unit_hash(request_id: str, salt: str) -> float:
    """A reproducible number in [0, 1) from a request id."""
    h = hashlib.blake2b(f"{salt}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def systematic(uses: int, rate: float, key: str) -> bool:
    """Every round(1 / rate)-th use of a task type (with an offset per type so types do not align): the gaps
    between audits are bounded, unlike a random sample's, which bounds how long a drift can go unseen."""
    if rate <= 0.0:
        return False
    k = max(1, round(1.0 / rate))
    return (uses + int(unit_hash(key, "audit-offset") * k)) % k == 0


@dataclass
class PairStats:
    uses: int = 0
    judged: int = 0
    accepted: int = 0
    recent: deque[bool] = field(default_factory=deque)
    reprobe: int = 0  # uses still to judge after the pair was re-opened

    def acceptance(self) -> float | None:
        return (sum(self.recent) / len(self.recent)) if self.recent else None


@dataclass(frozen=True)
class Decision:
    judge: bool
    reason: str  # negative-feedback | first-uses | re-probe | audit | sample | skip-established | skip-sample


class EvaluationSchedule:
    """Counts uses and verdicts per pair and decides, per answer, whether the judge sees it."""

    def __init__(self, settings: ScheduleSettings | None = None) -> None:
        self.settings = settings or ScheduleSettings()
        self.pairs: dict[PairKey, PairStats] = {}

    def stats(self, key: PairKey) -> PairStats:
        st = self.pairs.get(key)
        if st is None:
            st = self.pairs[key] = PairStats(recent=deque(maxlen=self.settings.acceptance_window))
        return st

    def established(self, key: PairKey) -> bool:
        st = self.stats(key)
        acc = st.acceptance()
        return st.uses > self.settings.established_uses and acc is not None and acc > self.settings.established_acceptance

    def decide(self, key: PairKey, request_id: str, *, negative_feedback: bool = False, count_use: bool = True,
               shadow: bool = False) -> Decision:
        """Whether to judge this use of `key`; counts the use (the decision looks at the uses before it).
        `shadow`: the answer would come from a shadow run while the frontier serves; the established rule
        is about answers users get, so it does not thin out the evidence that could move the boundary."""
        s = self.settings
        st = self.stats(key)
        before = st.uses
        established = self.established(key)
        if count_use:
            st.uses += 1
        if negative_feedback:
            return Decision(True, "negative-feedback")
        if before < s.first_uses:
            return Decision(True, "first-uses")
        if st.reprobe > 0:
            if count_use:
                st.reprobe -= 1
            return Decision(True, "re-probe")
        if established and not shadow:
            hit = (systematic(st.uses, s.audit_rate, "\x00".join(key)) if s.audit_spacing == "systematic"
                   else unit_hash(request_id, "audit") < s.audit_rate)
            return Decision(hit, "audit" if hit else "skip-established")
        hit = unit_hash(request_id, "sample") < s.sample_rate
        return Decision(hit, "sample" if hit else "skip-sample")

    def dump(self) -> list[dict[str, object]]:
        return [{"key": list(k), "uses": st.uses, "judged": st.judged, "accepted": st.accepted,
                 "recent": [int(x) for x in st.recent], "reprobe": st.reprobe} for k, st in self.pairs.items()]

    def load(self, rows: list[dict[str, object]]) -> None:
        for row in rows:
            try:
                key = tuple(str(x) for x in row["key"])  # type: ignore[attr-defined]
                if len(key) != 3:
                    continue
                st = self.stats(key)  # type: ignore[arg-type]
                st.uses, st.judged, st.accepted = int(row["uses"]), int(row["judged"]), int(row["accepted"])  # type: ignore[call-overload]
                st.recent.extend(bool(x) for x in row["recent"])  # type: ignore[attr-defined]
                st.reprobe = int(row["reprobe"])  # type: ignore[call-overload]
            except (KeyError, TypeError, ValueError):
                continue

    def count_use(self, key: PairKey, decision: Decision) -> None:
        """Count a use decided with `count_use=False` (a shadow run that did happen)."""
        st = self.stats(key)
        st.uses += 1
        if decision.reason == "re-probe" and st.reprobe > 0:
            st.reprobe -= 1

    def record(self, key: PairKey, accepted: bool, *, feedback: bool = False, reopen: bool = True) -> None:
        """A verdict on a use of `key`. A verdict prompted by negative feedback is a biased sample: it re-opens
        the pair but does not enter the acceptance share."""
        st = self.stats(key)
        if not accepted and reopen and st.reprobe == 0 and (feedback or self.established(key)):
            st.reprobe = self.settings.reprobe_uses  # not re-armed while a re-probe is running
        if feedback:
            return
        st.judged += 1
        st.accepted += int(accepted)
        st.recent.append(bool(accepted))
