"""A real llama-server refuses a prompt longer than its context (HTTP 400, `exceed_context_size_error`);
the gateway takes that for what it is, a context overflow, and falls back to the frontier model,
whole and streaming, from either of llama-server's APIs. And when nothing can hold the prompt,
the client gets its own API's overflow error with llama-server's own numbers.

No `context_window` is configured here: the gateway learns of the overflow only from the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.doubles import AnthropicDouble, Reply
from tests.engines.conftest import LlamaServer
from tests.engines.tiny_gguf import CONTEXT, REPLY
from tests.harness import GatewayServer, make_config

# The tiny model's byte-level vocabulary makes about one token per character.
LONG = "Summarise these notes. " + "note: the pump was serviced; " * 300
FRONTIER = "frontier holds long prompts"


@pytest.fixture(scope="module")
def frontier() -> Iterator[AnthropicDouble]:
    d = AnthropicDouble()
    d.default = Reply(text=FRONTIER)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def gateway(llama_server: LlamaServer, frontier: AnthropicDouble,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    timeouts = {"connect": 2, "read": 60}
    cfg: dict[str, Any] = {
        "ledger": {"path": "ledger.db"},
        "providers": {
            "llama-openai": {"kind": "openai", "base_url": llama_server.url + "/v1", "locality": "local",
                             "timeouts": timeouts},
            "llama-anthropic": {"kind": "anthropic", "base_url": llama_server.url, "locality": "local",
                                "timeouts": timeouts},
            "cloud": {"kind": "anthropic", "base_url": frontier.url, "locality": "remote"},
        },
        "models": {
            "tiny-openai": {"provider": "llama-openai", "model": "tiny"},
            "tiny-anthropic": {"provider": "llama-anthropic", "model": "tiny"},
            "frontier": {"provider": "cloud", "model": "big-model"},
        },
        "routes": {
            "via-openai": {"policy": "fallback", "targets": ["tiny-openai", "frontier"], "retries": 0},
            "via-anthropic": {"policy": "fallback", "targets": ["tiny-anthropic", "frontier"], "retries": 0},
            "local-only": {"policy": "fallback", "targets": ["tiny-openai"], "retries": 0},
        },
    }
    server = GatewayServer(make_config(cfg, tmp_path_factory.mktemp("gateway"))).start()
    yield server
    server.stop()


def ant(g: GatewayServer) -> anthropic.Anthropic:
    return g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0, timeout=120))


def oai(g: GatewayServer) -> openai.OpenAI:
    return g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0, timeout=120))


def local_step(g: GatewayServer, rid: str) -> dict[str, Any]:
    g.flush()
    rec = g.ledger.get(rid)
    assert rec is not None and rec.decision == "frontier", rec
    return next(s for s in rec.steps if s["kind"] == "call" and s["name"].startswith("tiny"))


@pytest.mark.parametrize("route", ["via-openai", "via-anthropic"])
def test_llama_server_overflow_falls_back(gateway, frontier, route):
    raw = ant(gateway).messages.with_raw_response.create(model=route, max_tokens=50,
                                                         messages=[{"role": "user", "content": LONG}])
    assert raw.parse().content[0].text == FRONTIER
    step = local_step(gateway, raw.headers["x-tierwise-request-id"])
    assert step["status"] == 400 and "context size" in step["reason"], step
    # A short prompt is still the local model's: the 400 was judged by its meaning.
    short = ant(gateway).messages.create(model=route, max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    assert short.content[0].text == REPLY


@pytest.mark.parametrize("route", ["via-openai", "via-anthropic"])
def test_llama_server_overflow_falls_back_when_streaming(gateway, route):
    with ant(gateway).messages.stream(model=route, max_tokens=50, messages=[{"role": "user", "content": LONG}]) as s:
        text = "".join(s.text_stream)
    assert text == FRONTIER
    with oai(gateway).chat.completions.create(model=route, max_tokens=50, stream=True,
                                              messages=[{"role": "user", "content": LONG}]) as chunks:
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FRONTIER


def test_nothing_holds_it_is_the_clients_own_overflow_error(gateway):
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(gateway).messages.create(model="local-only", max_tokens=50, messages=[{"role": "user", "content": LONG}])
    msg = e.value.body["error"]["message"]
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert msg.startswith("prompt is too long: ") and msg.endswith(f" > {CONTEXT} maximum"), msg
    with pytest.raises(openai.BadRequestError) as oe:
        oai(gateway).chat.completions.create(model="local-only", max_tokens=50,
                                             messages=[{"role": "user", "content": LONG}])
    assert oe.value.code == "context_length_exceeded" and f"is {CONTEXT} tokens" in oe.value.message
