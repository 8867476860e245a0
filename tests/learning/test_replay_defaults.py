"""The replay (bench/learning_loop.py) run with no flags is the `reflective` route's defaults (`ROUTE_DEFAULTS`),
so a figure printed without flags is the library's default; `--defaults replay16` keeps rounds 1-16's commands
(written against the replay's older defaults) reproducible. bench/RESULTS.md, round 17."""

from __future__ import annotations

import pytest

from tests.learning.replay_loop import replay_module
from tierwise.policies.reflective import ReflectiveConfig


@pytest.fixture(scope="module")
def replay():
    return replay_module()


def route_keys(s) -> tuple:
    rm = s.request_model
    return (s.sampling, s.value.explore, s.value.watch, s.within.enabled, rm.kind, rm.weight, rm.combine, rm.bound,
            rm.features, rm.type_weight, s.boundary.move_back, s.value.audit, s.order.kind, s.boundary.drift_p0_credible,
            rm.after_move_back)


def test_no_flags_is_the_route_defaults(replay) -> None:
    route = ReflectiveConfig.model_validate({"local": "l", "frontier": "f"})
    settings = replay.loop_settings(replay.parse_args([]))
    assert route_keys(settings) == route_keys(route)
    assert route_keys(settings)[:6] == ("value", "serve", "decide", True, "text", 1.0)
    assert settings.boundary.move_back == "credible"
    assert settings.boundary.drift_p0_credible == 0.90  # round 23


def test_round_16_command_for_d2_is_the_no_flag_run(replay) -> None:
    d2 = ["--within", "--explore", "serve", "--request-model", "text", "--request-weight", "1.0",
          "--move-back", "credible", "--watch", "decide"]
    assert replay.loop_settings(replay.parse_args(d2)) == replay.loop_settings(replay.parse_args([]))


def test_rounds_17_to_23_d2_is_the_no_flag_run_with_the_mean_p0(replay) -> None:
    d2 = replay.loop_settings(replay.parse_args(["--drift-p0-credible", "mean"]))
    now = replay.loop_settings(replay.parse_args([]))
    assert d2.boundary.drift_p0_credible is None and now.boundary.drift_p0_credible == 0.90
    d2.boundary.drift_p0_credible = 0.90
    assert d2 == now  # the one key round 23 changed
    assert replay.loop_settings(replay.parse_args(["--drift-p0-credible", "0.6"])).boundary.drift_p0_credible == 0.6


def test_round_28_c_is_the_no_flag_run_with_the_model_on_types_moved_back_below_target(replay) -> None:
    c = replay.loop_settings(replay.parse_args(["--request-after-move-back", "below-target"]))
    now = replay.loop_settings(replay.parse_args(["--request-after-move-back", "off"]))  # round 28's D
    assert c.request_model.after_move_back == "below-target" and now.request_model.after_move_back == "off"
    c.request_model.after_move_back = "off"
    assert c == now  # the one key round 28's option changes


def test_round_29_c_differs_from_the_no_flag_run_in_the_one_key(replay) -> None:
    c = replay.loop_settings(replay.parse_args(["--request-after-move-back", "checked"]))
    off = replay.loop_settings(replay.parse_args(["--request-after-move-back", "off"]))
    assert c.request_model.after_move_back == "checked" and off.request_model.after_move_back == "off"
    assert (c.request_model.check_odds, c.request_model.check_max) == (10.0, 50)  # the option's own defaults
    c.request_model.after_move_back = "off"
    assert c == off
    # the no-flag run is `off` (the route's default: the lead's decision in session 28)
    assert replay.loop_settings(replay.parse_args([])) == replay.loop_settings(
        replay.parse_args(["--request-after-move-back", "off"]))


def test_round_32_c_differs_from_off_in_the_check_and_its_margin(replay) -> None:
    c = replay.loop_settings(replay.parse_args(["--request-after-move-back", "checked", "--request-check-margin", "0.2"]))
    off = replay.loop_settings(replay.parse_args(["--request-after-move-back", "off"]))
    assert (c.request_model.after_move_back, c.request_model.check_margin) == ("checked", 0.2)
    assert off.request_model.check_margin is None
    c.request_model.after_move_back, c.request_model.check_margin = "off", None
    assert c == off  # the two keys round 32's C changes


def test_replay16_defaults_reproduce_the_earlier_rounds(replay) -> None:
    old = replay.loop_settings(replay.parse_args(["--defaults", "replay16"]))
    assert route_keys(old)[:6] == ("value", "shadow", "confirm", False, "none", 0.5)
    assert old.boundary.move_back == "mean" and old.boundary.discount == 1.0
    assert old.boundary.drift_p0_credible is None
    # round 16's D0 command under the older defaults: the flags it names win, the rest stay rounds 1-16's
    d0 = replay.loop_settings(replay.parse_args(["--defaults", "replay16", "--within", "--explore", "serve",
                                                 "--request-model", "text", "--request-weight", "1.0",
                                                 "--move-back", "credible"]))
    assert route_keys(d0)[:6] == ("value", "serve", "confirm", True, "text", 1.0)


def test_a_flag_overrides_one_route_default(replay) -> None:
    s = replay.loop_settings(replay.parse_args(["--no-within", "--watch", "confirm"]))
    assert route_keys(s)[:6] == ("value", "serve", "confirm", False, "text", 1.0)
    s = replay.loop_settings(replay.parse_args(["--sampling", "rules"]))
    assert s.sampling == "rules" and s.boundary.discount == 0.99
