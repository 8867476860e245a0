"""An upstream names itself in every answer, and a local server's name is often a file path on the
gateway's host (llama.cpp's server answers `"model": "/home/user/models/x.gguf"`). Answers the
gateway relays byte for byte (same API on both sides) must name what the client asked for, as
re-encoded answers always did (wire/model_name.py). Real HTTP on loopback, official SDKs."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest

from tests.doubles import Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

PATH = "/home/operator/models/secret-finetune-q4_k_m.gguf"
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def local_anthropic(gateway, openai_up, anthropic_up):
    """`local` speaks Anthropic's API (llama.cpp's server does), `frontier` OpenAI's: both APIs pass through."""
    cfg = two_tier_config(anthropic_up.url, openai_up.url, local_kind="anthropic", remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0},
                                  "cloud": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    return gateway(cfg)


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_pass_through_names_the_requested_model(gateway, openai_up, anthropic_up, stream):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    openai_up.script(Reply(text="hi there", model=PATH, tool_calls=[ToolCall("pick", {"model": PATH})]))
    client = oai(g)
    if stream:
        raw = client.chat.completions.with_raw_response.create(model="local", messages=MSG, stream=True,
                                                                 stream_options={"include_usage": True})
        text = raw.http_response.read().decode()
        chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
        assert chunks and {c["model"] for c in chunks} == {"local"}
        args = "".join(c["choices"][0]["delta"]["tool_calls"][0]["function"].get("arguments") or ""
                       for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
    else:
        r = client.chat.completions.create(model="local", messages=MSG)
        assert r.model == "local"
        args = r.choices[0].message.tool_calls[0].function.arguments
        text = r.model_dump_json()
    assert json.loads(args) == {"model": PATH}  # the model's own output is relayed as it was
    assert text.count("gguf") == 1  # ... and is the only place the path appears


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_pass_through_names_the_requested_model(local_anthropic, anthropic_up, stream):
    anthropic_up.script(Reply(text="hi there", model=PATH, tool_calls=[ToolCall("pick", {"model": PATH})]))
    client = ant(local_anthropic)
    if stream:
        with client.messages.stream(model="main", max_tokens=50, messages=MSG) as s:
            events = list(s)
            final = s.get_final_message()
        starts = [e for e in events if e.type == "message_start"]
        assert starts and starts[0].message.model == "main"
    else:
        final = client.messages.create(model="main", max_tokens=50, messages=MSG)
    assert final.model == "main"
    tool = [b for b in final.content if b.type == "tool_use"][0]
    assert tool.input == {"model": PATH}  # a tool's input object keeps its own `model` key


def test_raw_http_bodies_do_not_carry_the_upstream_path(local_anthropic, openai_up, anthropic_up):
    """Byte for byte, what a client without an SDK reads: no upstream name anywhere."""
    anthropic_up.default = Reply(text="a", model=PATH)
    openai_up.default = Reply(text="b", model=PATH)
    url = local_anthropic.url
    for stream in (False, True):
        r = httpx.post(url + "/v1/messages", json={"model": "main", "max_tokens": 20, "messages": MSG,
                                                   "stream": stream}, headers={"anthropic-version": "2023-06-01"})
        assert r.status_code == 200 and PATH not in r.text and '"model":"main"' in r.text, r.text[:400]
        r = httpx.post(url + "/v1/chat/completions", json={"model": "cloud", "messages": MSG, "stream": stream})
        assert r.status_code == 200 and PATH not in r.text and '"model":"cloud"' in r.text, r.text[:400]


def test_a_cached_pass_through_answer_names_the_requested_model(gateway, openai_up, anthropic_up):
    """A cached answer is the upstream's bytes: replayed, it names the route asked for, not the upstream."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"loc": {"policy": "fallback", "targets": ["local"], "retries": 0}},
                          cache={"enabled": True, "routes": {"loc": {}}})
    cfg["server"]["default_route"] = "loc"
    g = gateway(cfg)
    openai_up.script(Reply(text="cached", model=PATH))
    for stream in (False, True):
        first = httpx.post(g.url + "/v1/chat/completions",
                           json={"model": "loc", "messages": MSG, "temperature": 0, "stream": stream})
        again = httpx.post(g.url + "/v1/chat/completions",
                           json={"model": "loc", "messages": MSG, "temperature": 0, "stream": stream})
        assert PATH not in first.text and PATH not in again.text, (first.text[:300], again.text[:300])
        assert again.headers.get("x-tierwise-cache") == "hit"


def test_an_embeddings_answer_names_the_requested_model(gateway, openai_up, anthropic_up):
    """`/v1/embeddings` relays the upstream's body: it named the upstream's model (a local server's file path)."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["models"]["local"]["model"] = PATH
    g = gateway(cfg)
    raw = oai(g).embeddings.with_raw_response.create(model="local", input=["hello"])
    assert json.loads(raw.http_response.read())["model"] == "local"
    assert "gguf" not in raw.http_response.text
    assert openai_up.last.body["model"] == PATH  # (the upstream was asked by its own name)
