"""The online verdict demotes with hysteresis (issue 22, safe demotion).

newuser36b's route sat at an online APGR of 0.54 with its interval's lower end at 0.494-0.506: each new judged
pair re-decided, and the route flipped between demoted and re-promoted 9 times in 20 requests (bench/RESULTS.md,
"Two first-time users of issues 21 and 22 (session 36, newuser36b)"). As shift's `demote_above`/`promote_below`, a
demoted route now comes back only when the lower end clears random by `validation.promote_margin` (0.02)."""

from __future__ import annotations

import pytest

from tierwise.evaluation.online import PROMOTE_MARGIN, RANDOM_APGR, JudgedPair, OnlineValidator
from tierwise.policies.learned_config import PROMOTE_MARGIN as CONFIG_MARGIN
from tierwise.policies.learned_config import ValidationConfig
from tierwise.routers.guard import RouteGuard
from tierwise.routers.route_memory import RouteMemory

WINDOW = 100


def pair(i: int, good: bool) -> JudgedPair:
    """A judged pair whose score ranks it right (`good`: the strong tier is needed where the score is high) or
    wrong (needed where it is low)."""
    score = (i * 0.618) % 1.0
    needs_strong = score >= 0.5 if good else score < 0.5
    return JudgedPair(100, score, 0.5, 1.0, 0.0 if needs_strong else 1.0, key="k")


def hovering(n: int) -> list[JudgedPair]:
    """A scripted mix, 60% of pairs ranked right: on a window of 100, the lower end hovers at 0.48-0.52."""
    return [pair(i, (i * 7919) % 100 < 60) for i in range(n)]


def run(validator: OnlineValidator, guard: RouteGuard, pairs: list[JudgedPair],
        held: list[str] | None = None) -> tuple[list[float], list[str]]:
    """Each judged pair, then one request through the guard; the lower ends seen and the guard's changes (and in
    `held`, the reason of each request kept demoted while the estimate was better than random)."""
    lows, changes = [], []
    for p in pairs:
        est = validator.add(p)
        state = guard.observe("a question", 0.5)
        if est.low is not None and est.verdict in ("better-than-random", "not-better-than-random"):
            lows.append(est.low)
        if state.changed:
            changes.append(state.reason)
        if held is not None and state.demoted and est.verdict == "better-than-random":
            held.append(state.reason)
    return lows, changes


def held_by_margin() -> int:
    """How many of the hovering pairs end on an estimate better than random, short of the margin, once demoted."""
    validator = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200)
    guard = RouteGuard(None, checks=[validator.check])
    for n, p in enumerate(hovering(WINDOW + 40), 1):
        est = validator.add(p)
        guard.observe("a question", 0.5)
        if guard.demoted and est.verdict == "better-than-random":
            return n
    raise AssertionError("the scripted pairs never came back above random")


def crossings(lows: list[float], at: float) -> int:
    above = [x > at for x in lows]
    return sum(a != b for a, b in zip(above, above[1:], strict=False))


def test_a_lower_end_hovering_at_random_flips_the_route_at_most_once_and_a_clear_return_re_promotes():
    validator = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200)
    guard = RouteGuard(None, checks=[validator.check])
    held: list[str] = []
    lows, changes = run(validator, guard, hovering(WINDOW + 40), held)
    late = lows[WINDOW - 20:]  # the last 60 estimates: a full window of 100
    assert min(late) < RANDOM_APGR < max(late) and max(late) < RANDOM_APGR + PROMOTE_MARGIN + 0.01
    assert crossings(late, RANDOM_APGR) >= 6  # without hysteresis, each crossing was a flip of the route
    assert len(changes) <= 1, changes
    assert guard.demoted and validator.demoted and held  # demoted once, and kept so above random by the margin
    assert all("still demoted" in r and "promote margin 0.02 (re-promoted above 0.520)" in r for r in held)
    # a clear return: every new pair ranked right, until the lower end is well above random
    lows, changes = run(validator, guard, [pair(i, True) for i in range(WINDOW + 40, WINDOW + 140)])
    assert max(lows) > RANDOM_APGR + 0.1
    assert len(changes) == 1 and not guard.demoted and not validator.demoted
    assert changes[0].startswith("re-promoted: ") and "clears random by more than the promote margin 0.02" in changes[0]


def test_the_margin_is_a_config_knob_and_zero_is_the_old_behaviour():
    assert ValidationConfig().promote_margin == CONFIG_MARGIN == PROMOTE_MARGIN == 0.02
    with pytest.raises(ValueError):
        ValidationConfig(promote_margin=0.5)
    validator = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200, promote_margin=0.0)
    lows, changes = run(validator, RouteGuard(None, checks=[validator.check]), hovering(WINDOW + 40))
    assert len(changes) >= 6  # each crossing of 0.5 a flip, as newuser36b saw


def test_the_demoted_state_survives_a_restart_and_the_privacy_re_cleaning(tmp_path):
    validator = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200)
    guard = RouteGuard(None, checks=[validator.check])
    run(validator, guard, hovering(held_by_margin()))
    assert validator.demoted and validator.latest.verdict == "better-than-random"  # held by the margin alone
    validator.restore(validator.pairs())  # (what `RouteMemory.clean_prompts` does with the cleaned pairs)
    assert validator.demoted
    RouteMemory(tmp_path / "m.json", "router-a", 0.3, guard=guard, validator=validator).write(
        RouteMemory(tmp_path / "m.json", "router-a", 0.3, guard=guard, validator=validator).dump())
    fresh = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200)
    again = RouteGuard(None, checks=[fresh.check])
    assert RouteMemory(tmp_path / "m.json", "router-a", 0.3, guard=again, validator=fresh).restore()
    assert fresh.demoted and again.demoted
    state = again.observe("a question", 0.5)
    assert state.demoted and not state.changed  # the lower end below the margin keeps it demoted after a restart


def test_the_route_takes_the_margin_from_its_config():
    from types import SimpleNamespace

    from tierwise.policies.learned import _validator

    cfg = SimpleNamespace(validation=ValidationConfig(window=WINDOW, min_pairs=20, promote_margin=0.05),
                          refit_key_share=1.0, adapt=None)
    validator = _validator(cfg, "main")  # type: ignore[arg-type]
    assert validator is not None and validator.promote_margin == 0.05


@pytest.mark.parametrize("online", ["yes", {"demoted": 1}, {}, ["demoted"]])
def test_a_state_file_with_a_malformed_online_state_is_not_restored(tmp_path, online):
    import json

    validator = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200)
    run(validator, RouteGuard(None, checks=[validator.check]), hovering(WINDOW))
    mem = RouteMemory(tmp_path / "m.json", "router-a", 0.3, validator=validator)
    data = mem.dump()
    data["online"] = online
    (tmp_path / "m.json").write_text(json.dumps(data))
    fresh = OnlineValidator(window=WINDOW, min_pairs=20, rounds=200)
    assert not RouteMemory(tmp_path / "m.json", "router-a", 0.3, validator=fresh).restore()
    assert fresh.pairs() == [] and not fresh.demoted
