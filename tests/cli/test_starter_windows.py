"""`tierwise init`'s config gives every model a `context_window`: a prompt no model of a route can hold
is refused before any call (with the client API's own "prompt is too long"), rather than sent to a
frontier model whose window the config left out, and budgets bound a reservation by the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply
from tests.harness import GatewayServer, make_config
from tierwise.config import parse_config
from tierwise.starter import starter_yaml

KEYS = [{"anthropic_key": True, "openai_key": False}, {"anthropic_key": False, "openai_key": True},
        {"anthropic_key": True, "openai_key": True}, {"anthropic_key": False, "openai_key": False}]


@pytest.mark.parametrize("keys", KEYS)
def test_every_starter_model_has_a_context_window(keys: dict[str, bool]) -> None:
    cfg = parse_config(starter_yaml({"local": [], **keys}), file="<starter>")
    assert {n: m.context_window for n, m in cfg.models.items() if not m.context_window} == {}


def test_a_prompt_no_starter_model_can_hold_is_refused_without_a_call(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    local, cloud = OpenAIDouble(), AnthropicDouble()
    local.start()
    cloud.start()
    try:
        cloud.default = local.default = Reply(text="answered")
        cfg = yaml.safe_load(starter_yaml({"local": [], "anthropic_key": True, "openai_key": False}))
        cfg["providers"]["ollama"]["base_url"] = local.url + "/v1"
        cfg["providers"]["anthropic"]["base_url"] = cloud.url
        g = GatewayServer(make_config(cfg, tmp_path)).start()
        try:
            client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0))
            huge = "lorem ipsum dolor sit amet " * 40_000  # ~270k tokens: past every starter window
            # local-first: the local model (32k) and then claude-haiku (200k); a haiku-named model as
            # Claude Code sends for background work lands there too
            for model in ("local-first", "claude-haiku-4-5"):
                with pytest.raises(anthropic.BadRequestError) as e:
                    client.messages.create(model=model, max_tokens=1000, messages=[{"role": "user", "content": huge}])
                assert e.value.body["error"]["type"] == "invalid_request_error"
                assert "prompt is too long" in e.value.body["error"]["message"]
            assert cloud.requests == [] and local.requests == []
        finally:
            g.stop()
    finally:
        local.stop()
        cloud.stop()


@pytest.mark.parametrize(("window", "expected"), [(None, 4096), (4096, 2048), (65536, 4096), (1024, 512),
                                                 (1, 1)])  # (a 1-token slot, -c 8 -np 8: was 0, a config refused)
def test_the_starter_local_model_bounds_an_answer_whose_client_set_no_max_tokens(window: int | None,
                                                                               expected: int) -> None:
    # Before: no default_max_tokens: a small local model that never stops wrote until its context was full (an
    # OpenAI client may send no max_tokens), holding the server's slot for minutes before the 504.
    found = {"local": [("llamacpp", 8080, "http://127.0.0.1:8080/v1", "local")], "local_window": window,
             "anthropic_key": True, "openai_key": False}
    cfg = parse_config(starter_yaml(found), file="<starter>")
    assert cfg.models["local"].default_max_tokens == expected
    assert {n for n, m in cfg.models.items() if m.default_max_tokens} == {"local"}  # remote models: their own
