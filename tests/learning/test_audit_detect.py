"""`value.audit: detect`: local audits spaced by what the change-point test needs to find a drift within
`detect_within` of a type's requests, and a change-watch that judges every request until the test decides."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with, settle_local
from tierwise.learning.drift import threshold
from tierwise.learning.loop import LearningLoop
from tierwise.learning.schedule import systematic, unit_hash
from tierwise.learning.value import ValueSettings, detect_interval


def by_hand(p0: float, within: int) -> float:
    # t = 0.75: the test's alternative is 2t - 1 = 0.5 for any p0 above the target
    p1 = 0.5
    kl = p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))
    need = math.log(1000.0) / kl  # h = ln(1 / (1 - 0.999))
    return (within - need) / (1 / (1 - p1) - 0.5)


def test_the_interval_is_the_mean_detection_delay_solved_for_the_audit_step() -> None:
    for p0 in (0.76, 0.8, 0.9, 0.95):
        assert detect_interval(p0, 0.75, 0.999, 200) == pytest.approx(by_hand(p0, 200))
    assert detect_interval(0.9, 0.75, 0.999, 200) == pytest.approx(124.3, abs=0.05)
    assert detect_interval(0.76, 0.75, 0.999, 200) == pytest.approx(104.1, abs=0.05)
    # farther above the target: each rejection says more, the audits can be sparser; a longer window too
    xs = [detect_interval(p, 0.75, 0.999, 200) for p in (0.76, 0.8, 0.85, 0.9, 0.99)]
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert detect_interval(0.9, 0.75, 0.999, 400) > 2 * detect_interval(0.9, 0.75, 0.999, 200)
    # below the target: spaced as at the target (not every request, as the test's need would say)
    assert detect_interval(0.6, 0.75, 0.999, 200) == detect_interval(0.75, 0.75, 0.999, 200) == \
        pytest.approx(by_hand(0.75, 200))
    # a window the test cannot meet even on every request: every request
    assert detect_interval(0.8, 0.75, 0.999, 20) == 1.0
    # a stricter test (a higher threshold) needs denser audits
    assert detect_interval(0.9, 0.75, 0.9999, 200) < detect_interval(0.9, 0.75, 0.999, 200)


def test_a_settled_local_type_is_audited_at_the_detection_spacing() -> None:
    audits = {}
    for mode in ("fixed", "detect"):
        loop = loop_with(audit=mode)
        settle_local(loop)
        start = loop.seen["qa"]
        k = detect_interval(loop.boundary.state("qa").mean(), 0.75, 0.999, 200)
        decided = [loop.plan("qa", f"s{i}") for i in range(1000)]
        assert {p.reason for p in decided if p.judge} == {"audit"}
        assert all(p.tier == "local" and not p.shadow for p in decided)
        audits[mode] = [i for i, p in enumerate(decided) if p.judge]
        if mode == "fixed":
            assert [p.judge for p in decided] == [systematic(start + i + 1, 0.02, "r\x00qa") for i in range(1000)]
    st = loop.boundary.state("qa")
    assert k == pytest.approx(by_hand(st.a / (st.a + st.b), 200)) and 120 < k < 130
    assert len(audits["fixed"]) == 20 and len(audits["detect"]) in (math.floor(1000 / k), math.ceil(1000 / k))
    assert all(math.floor(k) <= b - a <= math.ceil(k) for a, b in pairwise(audits["detect"]))


def test_the_watch_judges_every_request_until_the_test_is_back_at_zero() -> None:
    loops = {mode: loop_with(audit=mode) for mode in ("fixed", "detect")}
    for loop in loops.values():
        settle_local(loop)
        loop.verdict("qa", 0.0)  # a lone rejected audit: the test leans
    s = loops["fixed"].boundary.state("qa").cusum.s
    assert 0.0 < s < threshold(0.999)
    detect = [loops["detect"].plan("qa", f"w{i}") for i in range(100)]
    assert all(p.judge and p.reason == "change-watch" for p in detect)
    fixed = [loops["fixed"].plan("qa", f"w{i}") for i in range(100)]
    # the confirming watch (the default) judges in proportion to the statistic
    assert [p.reason == "change-watch" for p in fixed] == \
        [unit_hash(f"w{i}", "watch") < s / threshold(0.999) for i in range(100)]
    assert sum(p.judge for p in fixed) < 30
    # accepted verdicts bring the statistic back to zero: then only the audits are left
    loop = loops["detect"]
    while loop.boundary.state("qa").cusum.s > 0.0:
        loop.verdict("qa", 1.0)
    assert not any(p.reason == "change-watch" for p in (loop.plan("qa", f"x{i}") for i in range(200)))


def drifted_verdict(rid: str) -> float:
    """After the drop: 45% of the local answers accepted (the replay's drift on a type the frontier often fails
    too, e.g. mmlu/law: 30% of the good answers kept, plus the ones the frontier also gets wrong)."""
    return 1.0 if unit_hash(rid, "drifted") < 0.45 else 0.0


def requests_to_move_back(loop: LearningLoop, limit: int = 2000) -> int | None:
    for i in range(limit):
        rid = f"d{i}"
        p = loop.plan("qa", rid)
        if p.judge:
            move = loop.verdict("qa", drifted_verdict(rid), request_id=rid)
            if move is not None and move.to == "frontier":
                return i + 1
    return None


def test_a_drift_is_found_within_the_window_where_sparse_audits_and_a_confirming_watch_take_longer() -> None:
    got = {}
    for mode in ("fixed", "detect"):
        loop = loop_with(audit=mode)
        settle_local(loop)
        got[mode] = requests_to_move_back(loop)
    assert got["detect"] is not None and got["detect"] <= 200
    assert got["fixed"] is None or got["fixed"] > 200
    assert got == {"fixed": 294, "detect": 161}  # this scripted stream's exact outcome


def test_settings() -> None:
    v = ValueSettings()
    assert (v.audit, v.detect_within) == ("fixed", 200)
    assert ValueSettings.model_validate({"audit": "detect", "detect_within": 500}).detect_within == 500
    for bad in ({"detect_within": 5}, {"audit": "sometimes"}, {"detect_within": "soon"}):
        with pytest.raises(ValidationError):
            ValueSettings.model_validate(bad)
