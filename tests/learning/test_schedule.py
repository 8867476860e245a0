"""The evaluation schedule's exact rules on a scripted stream."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tierwise.learning.schedule import EvaluationSchedule, ScheduleSettings, systematic, unit_hash

KEY = ("chat", "summarisation", "local")


def ids_with(cond, salt: str, n: int, start: int = 0) -> list[str]:
    """Request ids whose hash under `salt` satisfies `cond`, so the test controls which samples hit."""
    out, i = [], start
    while len(out) < n:
        rid = f"r{i}"
        if cond(unit_hash(rid, salt)):
            out.append(rid)
        i += 1
    return out


def test_first_uses_always_judged_then_sampled_by_hash() -> None:
    s = EvaluationSchedule(ScheduleSettings(first_uses=5, sample_rate=0.15))
    first = [s.decide(KEY, f"first-{i}") for i in range(5)]
    assert all(d.judge and d.reason == "first-uses" for d in first)
    hits = ids_with(lambda u: u < 0.15, "sample", 3, 1000)
    misses = ids_with(lambda u: u >= 0.15, "sample", 3, 1000)
    assert all(s.decide(KEY, r).reason == "sample" for r in hits)
    assert all(s.decide(KEY, r).reason == "skip-sample" and not s.decide(KEY, r, count_use=False).judge
               for r in misses)


def test_sample_is_reproducible_and_near_rate() -> None:
    a, b = EvaluationSchedule(), EvaluationSchedule()
    da = [a.decide(KEY, f"q{i}").judge for i in range(4000)]
    db = [b.decide(KEY, f"q{i}").judge for i in range(4000)]
    assert da == db
    share = sum(da[5:]) / len(da[5:])
    assert 0.08 < share < 0.12  # default 10%


def test_each_pair_counts_its_own_first_uses() -> None:
    s = EvaluationSchedule()
    for i in range(5):
        s.decide(KEY, f"a{i}")
    other = ("chat", "summarisation", "frontier")
    assert s.decide(other, "b0").reason == "first-uses"
    assert s.decide(("code", "summarisation", "local"), "c0").reason == "first-uses"


def test_negative_feedback_always_judged_even_when_established() -> None:
    s = EvaluationSchedule(ScheduleSettings(audit_rate=0.0))
    for i in range(25):
        s.decide(KEY, f"e{i}")
        s.record(KEY, True)
    assert s.established(KEY)
    assert s.decide(KEY, "x").reason == "skip-established"
    d = s.decide(KEY, "x", negative_feedback=True)
    assert d.judge and d.reason == "negative-feedback"


def test_established_pair_only_audited_every_50th_use() -> None:
    s = EvaluationSchedule(ScheduleSettings(audit_rate=0.02, sample_rate=0.2))
    for i in range(21):
        s.decide(KEY, f"e{i}")
        s.record(KEY, True)
    assert s.established(KEY)
    decided = [s.decide(KEY, f"x{i}") for i in range(200)]
    audits = [i for i, d in enumerate(decided) if d.judge]
    assert len(audits) == 4 and all(b - a == 50 for a, b in zip(audits, audits[1:], strict=False))
    assert all(decided[i].reason == "audit" for i in audits)
    assert all(d.reason == "skip-established" for i, d in enumerate(decided) if i not in audits)
    assert all(systematic(21 + i + 1, 0.02, "\x00".join(KEY)) == d.judge for i, d in enumerate(decided))


def test_established_pair_only_audited_random_spacing() -> None:
    s = EvaluationSchedule(ScheduleSettings(audit_rate=0.02, sample_rate=0.2, audit_spacing="random"))
    for i in range(21):  # uses must exceed 20
        assert not s.established(KEY)
        s.decide(KEY, f"e{i}")
        s.record(KEY, i not in (0, 10))  # last 20 verdicts: 19/20 accepted > 80%
    assert s.established(KEY)
    audited = ids_with(lambda u: u < 0.02, "audit", 2, 5000)
    skipped = ids_with(lambda u: u >= 0.02, "audit", 200, 5000)
    assert all(s.decide(KEY, r, count_use=False).reason == "audit" for r in audited)
    assert not any(s.decide(KEY, r, count_use=False).judge for r in skipped)


def test_not_established_at_exactly_80_percent_or_20_uses() -> None:
    s = EvaluationSchedule()
    for i in range(20):
        s.decide(KEY, f"u{i}")
        s.record(KEY, True)
    assert not s.established(KEY)  # 20 uses is not more than 20
    s.decide(KEY, "u20")
    assert s.established(KEY)
    for _ in range(4):
        s.record(KEY, False)  # last 20 verdicts: 16 good = 80%, not more
    assert not s.established(KEY)


def test_poor_verdict_on_established_pair_reopens_it() -> None:
    s = EvaluationSchedule(ScheduleSettings(audit_rate=0.0, first_uses=5))
    for i in range(25):
        s.decide(KEY, f"e{i}")
        s.record(KEY, True)
    s.record(KEY, False)
    ds = [s.decide(KEY, f"n{i}") for i in range(6)]
    assert [d.reason for d in ds[:5]] == ["re-probe"] * 5
    assert ds[5].reason == "skip-established"


def test_feedback_verdict_reopens_but_does_not_count() -> None:
    s = EvaluationSchedule()
    for i in range(25):
        s.decide(KEY, f"e{i}")
        s.record(KEY, True)
    s.record(KEY, False, feedback=True)
    st = s.stats(KEY)
    assert st.acceptance() == 1.0 and st.reprobe == 5


@pytest.mark.parametrize("rate", [0.05, 0.25])
def test_sample_rate_bounded(rate: float) -> None:
    with pytest.raises(ValidationError, match="sample_rate"):
        ScheduleSettings(sample_rate=rate)


def test_shadow_uses_count_and_use_up_the_reprobe() -> None:
    s = EvaluationSchedule(ScheduleSettings(audit_rate=0.0))
    for i in range(25):
        s.decide(KEY, f"e{i}")
        s.record(KEY, True)
    s.record(KEY, False)
    reasons = []
    for i in range(8):
        d = s.decide(KEY, f"s{i}", count_use=False)
        if d.judge:
            s.count_use(KEY, d)
        reasons.append(d.reason)
    assert reasons == ["re-probe"] * 5 + ["skip-established"] * 3
