"""Escalation routes in tierwise.yaml: they build at start, and bad config fails there with a
clear message (unknown verifier, one-tier cascade, invalid JSON Schema, bad detectors)."""

import pytest

from tests.harness import make_config, two_tier_config
from tierwise.errors import ConfigError
from tierwise.gateway import Gateway
from tierwise.policies.advisor import Advisor
from tierwise.policies.cascade import Cascade
from tierwise.policies.draft_verify import DraftVerify
from tierwise.policies.specialist import Handoff


def cfg_with(routes, tmp_path, **extra_models):
    data = two_tier_config("http://127.0.0.1:9", "http://127.0.0.1:9", routes=routes)
    data["models"].update(extra_models)
    return make_config(data, tmp_path)


ALL_ROUTES = {
    "main": {"policy": "cascade", "tiers": ["local", "frontier"], "escalation_context": "with_draft",
             "max_escalations": 1, "verifiers": [{"type": "arithmetic"}]},
    "dv": {"policy": "draft_verify", "draft": "local", "verifier": "frontier", "on_reject": "main",
           "verdict_format": "json", "check_max_tokens": 24},
    "adv": {"policy": "advisor", "executor": "local", "advisor": "frontier", "max_uses": 2, "compress": True},
    "spec": {"policy": "specialist", "default": "local", "summariser": "local", "specialists": [
        {"name": "vision", "target": "frontier", "images": True},
        {"name": "long", "target": "frontier", "long_context": True, "context": "summary"},
        {"name": "math", "target": "frontier", "detect": {"regex": "integral|\\d+\\s*[*/]\\s*\\d+"},
         "context": "last_n", "last_n": 3},
        {"name": "proof", "target": "frontier", "detect": {"callable": "tests.escalation.detectors:asks_for_proof"}},
    ]},
}


def test_every_escalation_route_builds(tmp_path):
    gw = Gateway(cfg_with(ALL_ROUTES, tmp_path))
    assert isinstance(gw.resolve("main"), Cascade)
    assert isinstance(gw.resolve("dv"), DraftVerify) and gw.resolve("dv").on_reject is gw.resolve("main")
    assert isinstance(gw.resolve("adv"), Advisor)
    spec = gw.resolve("spec")
    assert isinstance(spec, Handoff) and spec.window == 8192 and len(spec.specialists) == 4


def _error(routes, tmp_path, **models) -> str:
    with pytest.raises(ConfigError) as e:
        Gateway(cfg_with(routes, tmp_path, **models))
    return e.value.message


def test_cascade_with_one_tier(tmp_path):
    msg = _error({"main": {"policy": "cascade", "tiers": ["local"]}}, tmp_path)
    assert "routes.main.tiers" in msg and "at least two tiers" in msg and "line " in msg


def test_unknown_verifier(tmp_path):
    msg = _error({"main": {"policy": "cascade", "tiers": ["local", "frontier"],
                           "verifiers": [{"type": "vibes"}]}}, tmp_path)
    assert "unknown verifier type 'vibes'" in msg and "routes.main" in msg


def test_invalid_json_schema(tmp_path):
    msg = _error({"main": {"policy": "cascade", "tiers": ["local", "frontier"],
                           "verifiers": [{"type": "json_schema", "schema": {"type": "banana"}}]}}, tmp_path)
    assert "not a valid JSON Schema" in msg


def test_judge_model_must_exist(tmp_path):
    msg = _error({"main": {"policy": "cascade", "tiers": ["local", "frontier"],
                           "verifiers": [{"type": "llm_judge", "model": "oracle"}]}}, tmp_path)
    assert "unknown model or route 'oracle'" in msg


def test_unknown_tier(tmp_path):
    msg = _error({"main": {"policy": "cascade", "tiers": ["local", "gpt-9"]}}, tmp_path)
    assert "'gpt-9'" in msg


def test_bad_detector_regex(tmp_path):
    msg = _error({"main": {"policy": "specialist", "default": "local", "specialists": [
        {"target": "frontier", "detect": {"regex": "(unclosed"}}]}}, tmp_path)
    assert "not a valid regular expression" in msg


def test_detector_callable_must_import(tmp_path):
    msg = _error({"main": {"policy": "specialist", "default": "local", "specialists": [
        {"target": "frontier", "detect": {"callable": "no_such_module_xyz:f"}}]}}, tmp_path)
    assert "cannot import module 'no_such_module_xyz'" in msg


def test_specialist_needs_a_trigger(tmp_path):
    msg = _error({"main": {"policy": "specialist", "default": "local", "specialists": [
        {"target": "frontier"}]}}, tmp_path)
    assert "needs a trigger" in msg


def test_long_context_needs_a_window(tmp_path):
    data = two_tier_config("http://127.0.0.1:9", "http://127.0.0.1:9", routes={
        "main": {"policy": "specialist", "default": "local", "specialists": [
            {"target": "frontier", "long_context": True}]}})
    del data["models"]["local"]["context_window"]
    with pytest.raises(ConfigError, match="context_window"):
        Gateway(make_config(data, tmp_path))


def test_unknown_key_in_advisor(tmp_path):
    msg = _error({"main": {"policy": "advisor", "executor": "local", "advisor": "frontier", "max_use": 2}},
                 tmp_path)
    assert "max_use" in msg and "unknown key" in msg
