"""Which field carries the output cap of a request translated to the OpenAI chat wire (session 35, maxfield35).

An Anthropic Messages or Responses client (Claude Code, Codex) routed to an OpenAI model went upstream with
`max_tokens`, which OpenAI's reasoning models (o1/o3/o4-mini, gpt-5) refuse with a 400 ("Unsupported parameter:
'max_tokens' ... Use 'max_completion_tokens' instead"). Ollama, TGI and LM Studio read only `max_tokens`. The
provider's `max_tokens_field` picks (default by base URL: `max_completion_tokens` for api.openai.com and Azure
OpenAI, `max_tokens` elsewhere), and the field the upstream reads says what a budget reserved.

Upstream doubles: one refusing `max_tokens` as OpenAI does, one reading only `max_tokens` as Ollama does; official
anthropic and openai SDKs against the gateway on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles import Reply
from tests.doubles.openai_double import OpenAIDouble
from tests.gateway.conftest import ant, gateway, oai  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config
from tierwise.config import ProviderConfig


@pytest.fixture
def reasoning_up() -> Iterator[OpenAIDouble]:
    d = OpenAIDouble(cap_field="max_completion_tokens")
    d.start()
    yield d
    d.stop()


@pytest.fixture
def ollama_up() -> Iterator[OpenAIDouble]:
    d = OpenAIDouble(cap_field="max_tokens")
    d.start()
    yield d
    d.stop()


def _config(url: str, field: str | None = None, ceiling: int | None = None) -> dict:
    cfg = two_tier_config(url, url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    if field is not None:
        cfg["providers"]["cloud"]["max_tokens_field"] = field
    if ceiling is not None:
        cfg["models"]["frontier"]["max_output_tokens"] = ceiling
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0}]}
    return cfg


MSG = [{"role": "user", "content": "q"}]


def test_an_anthropic_client_reaches_a_reasoning_model(gateway, reasoning_up):  # noqa: F811
    g = gateway(_config(reasoning_up.url, "max_completion_tokens", ceiling=200))
    reasoning_up.default = Reply(text="hi", usage=(10, 5))
    # Before: anthropic.BadRequestError (the upstream's 400: "Unsupported parameter: 'max_tokens' ...")
    r = ant(g).messages.create(model="main", max_tokens=300, messages=MSG)
    assert r.content[0].text == "hi"
    body = reasoning_up.requests[-1].body
    # the cap lowered to the model's ceiling, in the field the upstream reads: what the budget reserved
    assert body.get("max_completion_tokens") == 200 and "max_tokens" not in body, body
    with ant(g).messages.stream(model="main", max_tokens=100, messages=MSG) as s:
        assert s.get_final_text() == "hi"
    assert reasoning_up.read_caps[-1] == 100


def test_a_responses_client_reaches_a_reasoning_model(gateway, reasoning_up):  # noqa: F811
    g = gateway(_config(reasoning_up.url, "max_completion_tokens"))
    reasoning_up.default = Reply(text="hi", usage=(10, 5))
    r = oai(g).responses.create(model="main", input="q", max_output_tokens=64)
    assert r.output_text == "hi"
    assert reasoning_up.read_caps == [64], reasoning_up.requests[-1].body


def test_both_fields_bound_either_kind_of_upstream(gateway, ollama_up):  # noqa: F811
    g = gateway(_config(ollama_up.url, "both"))
    ollama_up.default = Reply(text="hi", usage=(10, 5))
    ant(g).messages.create(model="main", max_tokens=77, messages=MSG)
    body = ollama_up.requests[-1].body
    assert body.get("max_tokens") == 77 and body.get("max_completion_tokens") == 77, body


def test_an_upstream_that_reads_only_max_tokens_is_bound_by_default(gateway, ollama_up):  # noqa: F811
    """A loopback URL (Ollama, llama.cpp, vLLM, TGI): `max_tokens`, which every one of them reads."""
    g = gateway(_config(ollama_up.url))
    ollama_up.default = Reply(text="hi", usage=(10, 5))
    ant(g).messages.create(model="main", max_tokens=300, messages=MSG)
    assert ollama_up.read_caps[-1] == 300
    # An OpenAI client that set no cap: the budget reserved default_max_output_tokens (4,096) and the gateway adds
    # it. Before: as `max_completion_tokens`, which this upstream ignores: it wrote until its own limit.
    oai(g).chat.completions.create(model="main", messages=MSG)
    assert ollama_up.read_caps[-1] == 4096, ollama_up.requests[-1].body
    # the client's own field is still forwarded as the client wrote it
    oai(g).chat.completions.create(model="main", messages=MSG, max_tokens=12)
    assert ollama_up.read_caps[-1] == 12


@pytest.mark.parametrize(("url", "field"), [
    ("https://api.openai.com/v1", "max_completion_tokens"),
    ("https://API.OpenAI.com:443/v1", "max_completion_tokens"),
    ("https://myres.openai.azure.com/openai/v1", "max_completion_tokens"),
    ("http://127.0.0.1:11434/v1", "max_tokens"),
    ("https://openrouter.ai/api/v1", "max_tokens"),
    ("https://api.openai.com.evil.example/v1", "max_tokens"),
])
def test_the_default_field_by_base_url(url, field):
    assert ProviderConfig(kind="openai", base_url=url).cap_field == field
    assert ProviderConfig(kind="openai", base_url=url, max_tokens_field="both").cap_field == "both"
