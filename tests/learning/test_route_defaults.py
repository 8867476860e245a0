"""The `reflective` route's defaults (round 14, bench/RESULTS.md "Issue 21, session 22"): value sampling, served
explorations, the within-type signal, the text model at weight 1.0 and a move back on the credible interval; since
round 16 a change-watch that judges every request until the change-point test decides (`value.watch: decide`); since
round 23 the change-point test's unchanged rate from the posterior's lower 0.90 credible edge
(`boundary.drift_p0_credible: 0.90`). Round 28's `request_model.after_move_back: below-target` stays off (the
drift leak), and so does round 29's `after_move_back: checked` (the lead's decision, session 28). A
key the config gives wins; a section given in part keeps the route's defaults for the keys it leaves out."""

from __future__ import annotations

import json

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, wait_for
from tests.learning.test_reflective_route import SUMMARY, judge_or_answer
from tierwise.learning.boundary import BoundarySettings
from tierwise.learning.loop import LoopSettings
from tierwise.policies.reflective import ReflectiveConfig


def settings_of(cfg: ReflectiveConfig) -> tuple:
    return (cfg.sampling, cfg.value.explore, cfg.within.enabled, cfg.request_model.kind, cfg.request_model.weight,
            cfg.boundary.move_back, cfg.value.watch, cfg.boundary.drift_p0_credible)


def test_the_default_route_settings() -> None:
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f"})
    assert settings_of(cfg) == ("value", "serve", True, "text", 1.0, "credible", "decide", 0.90)
    # everything else at the learning settings' own defaults
    assert cfg.boundary.credible == BoundarySettings().credible == 0.90
    assert cfg.request_model.bound == "none" and cfg.request_model.features == "hashed"
    assert cfg.request_model.after_move_back == "off"  # rounds 28 and 29's options stay off (session 28's decision)
    assert (cfg.request_model.check_odds, cfg.request_model.check_max) == (10.0, 50)
    assert LoopSettings().request_model.after_move_back == "off"  # the learning settings' own default unchanged
    given = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "request_model": {"after_move_back": "off"}})
    assert given.request_model.after_move_back == "off" and given.request_model.weight == 1.0
    # the settings' own defaults (the replay, `LearningLoop` built directly) are unchanged
    plain = LoopSettings()
    assert (plain.sampling, plain.value.explore, plain.within.enabled, plain.request_model.kind,
            plain.request_model.weight, plain.boundary.move_back, plain.value.watch, plain.boundary.drift_p0_credible) == \
        ("rules", "shadow", False, "none", 0.5, "mean", "confirm", None)


def test_a_section_given_in_part_keeps_the_route_defaults_and_given_keys_win() -> None:
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "boundary": {"credible": 0.8},
                                           "request_model": {"alpha": 2.0}, "value": {"horizon": 5000}})
    assert settings_of(cfg) == ("value", "serve", True, "text", 1.0, "credible", "decide", 0.90)
    assert (cfg.boundary.credible, cfg.request_model.alpha, cfg.value.horizon) == (0.8, 2.0, 5000)
    cfg = ReflectiveConfig.model_validate({
        "local": "l", "frontier": "f", "sampling": "rules", "value": {"explore": "shadow", "watch": "confirm"},
        "within": {"enabled": False}, "request_model": {"kind": "none", "weight": 0.5},
        "boundary": {"move_back": "mean", "drift_p0_credible": None}})
    assert settings_of(cfg) == ("rules", "shadow", False, "none", 0.5, "mean", "confirm", None)
    # a value section that names only `watch` keeps the served explorations, and the other way round
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "value": {"watch": "lean"}})
    assert (cfg.value.explore, cfg.value.watch) == ("serve", "lean")
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "value": {"explore": "shadow"}})
    assert (cfg.value.explore, cfg.value.watch) == ("shadow", "decide")


def test_the_default_route_over_http_moves_a_type_local_and_serves_it(gateway, openai_up, anthropic_up):  # noqa: F811
    # no learning keys but the costs (fixed, so the value of a verdict does not wait for measured ones)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.6,
        "value": {"saving_usd": 0.01, "judge_usd": 0.001, "shadow_usd": 0.001}}})
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    g = gateway(cfg)
    route = g.gateway.resolve("main")
    s = route.loop.settings
    assert (s.sampling, s.value.explore, s.within.enabled, s.request_model.kind, s.boundary.move_back,
            s.value.watch) == ("value", "serve", True, "text", "credible", "decide")
    assert route.loop.request_model is not None
    for i in range(60):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier("summarisation") == "local":
            break
    assert route.loop.boundary.tier("summarisation") == "local"
    judged = [r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)]
    assert judged  # the move rests on judge verdicts the value of information bought
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (after)"}])
    assert r.choices[0].message.content == "local summary"
