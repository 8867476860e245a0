"""Edges of `request_model.after_move_back: checked` (review of round 29): the config a user writes to leave it
(`after_move_back: off`, unquoted in YAML), odd values refused at the config's load, a quality target at which the
drop the check weighs would be 0, and saved verdict counts (which now decide whether the text model serves a type)
that are negative, inconsistent or too large to be a float."""

from __future__ import annotations

import json
import math

import pytest

from tierwise.config import ConfigError, parse_config
from tierwise.learning.drift import drop_odds
from tierwise.learning.loop import LearningLoop

from .test_request_after_move_back import moved_back, probe

CONFIG = """
providers:
  l: {kind: openai, base_url: "http://127.0.0.1:1/v1", locality: local}
  f: {kind: anthropic, base_url: "http://127.0.0.1:2"}
models:
  local: {provider: l, model: m}
  frontier: {provider: f, model: big}
routes:
  main:
    policy: reflective
    local: local
    frontier: frontier
    request_model: {%s}
"""


def test_an_unquoted_off_in_yaml_turns_the_check_off() -> None:
    # YAML reads `off` as false; the docs' `request_model: {after_move_back: off}` failed the config's load
    cfg = parse_config(CONFIG % "after_move_back: off", file="tierwise.yaml")
    assert cfg.routes["main"].request_model.after_move_back == "off"
    assert parse_config(CONFIG % "after_move_back: checked", file="t.yaml").routes["main"].request_model.after_move_back \
        == "checked"


@pytest.mark.parametrize("given", ["check_odds: 0", "check_odds: -5", "check_odds: 1", "check_odds: .nan",
                                   "check_odds: .inf", "check_odds: 1e300", "check_odds: ten", "check_odds: true",
                                   "check_max: 0", "check_max: -1", "check_max: 2.5", "check_max: 1e9",
                                   "check_max: true", "check_max: 1000000", "after_move_back: Checked"])
def test_odd_check_settings_are_refused_at_the_configs_load_naming_the_key(given: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(CONFIG % given, file="tierwise.yaml")
    key = given.split(":")[0]
    assert f"routes.main.request_model.{key}" in str(e.value) and "tierwise.yaml" in str(e.value)


@pytest.mark.parametrize("target", [0.001, 0.01, 0.015, 0.5, 0.75, 0.999])
def test_drop_odds_is_finite_at_any_target_a_route_accepts(target: float) -> None:
    # at a target of 0.01 or less the drop's acceptance was 0: a math domain error on the type's every request
    for good, judged in ((0, 0), (0, 1), (1, 1), (3, 7)):
        assert math.isfinite(drop_odds(good, judged, target))
    assert drop_odds(0, 1, target) > 0.0 > drop_odds(1, 1, target)  # a rejection favours the drop


@pytest.mark.parametrize("counts", [
    {"judged": 10**400, "good": 10**400, "total_judged": 10**401},  # an int too large for a float
    {"judged": 3, "good": 5},  # more accepted than judged: odds for the target nothing gave
    {"judged": -1000000, "good": 0},  # a negative count: served, never checked
    {"judged": 5, "good": 0, "total_judged": 2},  # more since the last move than in all
])
def test_a_hostile_saved_count_skips_the_types_state(counts: dict, caplog) -> None:
    loop = moved_back("checked", "below-target")
    data = json.loads(json.dumps(loop.dump()))
    data["boundary"]["qa"].update(counts)
    new = LearningLoop("r", loop.settings)
    new.load(data)
    assert "malformed saved state" in caplog.text
    st = new.boundary.state("qa")
    assert st.sent_back == 0 and st.judged == 0  # the type's state as if never saved (a new frontier type)
    assert probe(new, "qa") in ("local", "frontier")  # decides; raised OverflowError before
    assert new.boundary.state("good").tier == "local"  # the other types' state is restored
