"""`vision: false` on a model: a request with images skips it without a call (the upstream would
refuse it: llama.cpp without a projector answers 500), so the route moves on at once, with no
retry and no failure on the model's breaker; when no target takes images, the client hears a 400
in its own schema. Unset, a model is tried as before."""

from __future__ import annotations

import anthropic
import pytest

from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE_TURN = [{"role": "user", "content": [
    {"type": "text", "text": "what is in this picture?"},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]


def config(openai_up, anthropic_up, vision):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "local-first": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 1, "backoff_base": 0},
        "local-only": {"policy": "fallback", "targets": ["local"], "retries": 1, "backoff_base": 0}})
    cfg["server"]["default_route"] = "local-first"
    if vision is not None:
        cfg["models"]["local"]["vision"] = vision
    return cfg


def test_images_skip_a_model_configured_without_vision(gateway, openai_up, anthropic_up):
    g = gateway(config(openai_up, anthropic_up, vision=False))
    r = ant(g).messages.with_raw_response.create(model="local-first", max_tokens=50, messages=IMAGE_TURN)
    assert r.parse().content[0].text == "ok"
    assert openai_up.requests == []  # never called: no 500, no retry
    assert "call:frontier:ok" in r.headers["x-tierwise-steps"]
    assert g.gateway.deployments["local"].breaker.state == "closed"
    g.flush()
    rec = g.ledger.get(r.headers["x-tierwise-request-id"])
    assert any("vision: false" in (s.get("reason") or "") for s in rec.steps), rec.steps
    # Text still goes to the local model.
    oai(g).chat.completions.create(model="local-first", messages=[{"role": "user", "content": "hi"}])
    assert len(openai_up.requests) == 1


def test_no_target_that_takes_images_is_a_400_in_the_clients_schema(gateway, openai_up, anthropic_up):
    g = gateway(config(openai_up, anthropic_up, vision=False))
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="local-only", max_tokens=50, messages=IMAGE_TURN)
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "vision: false" in e.value.body["error"]["message"]
    assert openai_up.requests == []


def test_a_model_without_the_flag_is_still_tried_with_images(gateway, openai_up, anthropic_up):
    g = gateway(config(openai_up, anthropic_up, vision=None))
    ant(g).messages.create(model="local-first", max_tokens=50, messages=IMAGE_TURN)
    assert len(openai_up.requests) == 1


def test_the_starter_and_the_claude_code_example_mark_their_text_models():
    """Claude Code subagents read screenshots: the local text model of the starter config and of
    examples/claude-code.yaml says `vision: false`, so such turns skip it instead of failing on it."""
    from pathlib import Path

    from tierwise.config import load_config, parse_config
    from tierwise.starter import starter_yaml

    cfg = parse_config(starter_yaml({"local": [], "anthropic_key": True, "openai_key": False}), file="<starter>")
    assert cfg.models["local"].vision is False
    example = load_config(str(Path(__file__).resolve().parents[2] / "examples" / "claude-code.yaml"))
    assert example.models["qwen-coder"].vision is False
