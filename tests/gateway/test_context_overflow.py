"""Context overflow falls back; a model whose configured window cannot hold a request is skipped
before it is called; when nothing can hold it, the client gets its own API's overflow error.

Upstreams are doubles that refuse an over-long prompt exactly as llama.cpp, vLLM, OpenAI, Ollama
and Anthropic do (tests/doubles/overflow.py); clients are the official SDKs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.doubles import Fail, Raw, Reply
from tests.doubles.overflow import SERVERS, ContextLimit
from tests.gateway.conftest import ant, oai
from tests.harness import GatewayServer, two_tier_config
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router

LONG = "Summarise this log line by line. " + "lorem ipsum dolor sit amet " * 900  # ~6,000 tokens
SHORT = "Say hi."
WINDOW = 2000
FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"


def record(g: GatewayServer, rid: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        g.flush()
        rec = g.ledger.get(rid)
        if rec is not None or time.monotonic() > deadline:
            return rec
        time.sleep(0.01)


def reasons(rec: Any) -> str:
    return " | ".join(s.get("reason", "") for s in rec.steps)


def fallback_local_first() -> dict[str, Any]:
    return {"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}}


def with_local_window(cfg: dict[str, Any], window: int | None) -> dict[str, Any]:
    if window is None:
        cfg["models"]["local"].pop("context_window", None)
    else:
        cfg["models"]["local"]["context_window"] = window
    return cfg


# ---------------------------------------------------------------------------- upstream says "too long"


@pytest.mark.parametrize("server", [s for s in SERVERS if s != "anthropic"])
def test_openai_style_overflow_falls_back_to_the_frontier(gateway, openai_up, anthropic_up, server):
    """llama.cpp, vLLM, OpenAI and Ollama all answer 400; it is not a malformed request."""
    openai_up.default = ContextLimit(WINDOW, server, then=Reply(text="local answer"))
    anthropic_up.default = Reply(text="frontier answer")
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()),
                                  None))  # no window configured: only the upstream's answer tells
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": LONG}])
    assert raw.parse().choices[0].message.content == "frontier answer"
    assert len(openai_up.requests) == 1 and openai_up.default.refused == 1  # local was asked, and refused
    rec = record(g, raw.headers["x-tierwise-request-id"])
    assert rec.decision == "frontier" and "fell back to frontier" in rec.reason, reasons(rec)
    local_call = next(s for s in rec.steps if s["kind"] == "call" and s["name"] == "local")
    assert local_call["status"] == 400 and not local_call["ok"]
    # A short prompt still goes to the local model: the class came from the body, not the status.
    short = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": SHORT}])
    assert short.choices[0].message.content == "local answer"


def test_anthropic_overflow_falls_back_and_streams(gateway, openai_up, anthropic_up):
    """An Anthropic upstream's "prompt is too long" (first target) moves on, streaming too."""
    anthropic_up.default = ContextLimit(WINDOW, "anthropic", then=Reply(text="frontier answer"))
    openai_up.default = Reply(text="local answer")
    routes = {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=routes))
    with ant(g).messages.stream(model="main", max_tokens=100, messages=[{"role": "user", "content": LONG}]) as s:
        text = "".join(s.text_stream)
    assert text == "local answer"
    assert anthropic_up.default.refused == 1


def test_a_malformed_request_still_does_not_fall_back(gateway, openai_up, anthropic_up):
    openai_up.script(Fail(400, "Invalid value for 'temperature': must be at most 2"))
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()))
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": SHORT}])
    assert "temperature" in e.value.message and e.value.code is None
    assert anthropic_up.requests == []


def test_a_content_policy_refusal_does_not_fall_back(gateway, openai_up, anthropic_up):
    # OpenAI's answer when its safety system rejects a request (a 400 with its own code).
    openai_up.script(Raw(400, b'{"error":{"message":"Your request was rejected as a result of our safety system.",'
                              b'"type":"invalid_request_error","param":null,"code":"content_policy_violation"}}'))
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()))
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": SHORT}])
    assert e.value.code == "content_policy_violation"
    assert anthropic_up.requests == []


# ---------------------------------------------------------------------------- skipped by configured window


def test_a_model_whose_window_is_too_small_is_skipped_without_a_call(gateway, openai_up, anthropic_up):
    openai_up.default = ContextLimit(WINDOW, "llamacpp", then=Reply(text="local answer"))
    anthropic_up.default = Reply(text="frontier answer")
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()),
                                  WINDOW))
    raw = ant(g).messages.with_raw_response.create(model="main", max_tokens=200,
                                                   messages=[{"role": "user", "content": LONG}])
    assert raw.parse().content[0].text == "frontier answer"
    assert openai_up.requests == []  # never called
    rec = record(g, raw.headers["x-tierwise-request-id"])
    skip = next(s for s in rec.steps if s["kind"] == "decision" and s["name"] == "local")
    assert skip["reason"].startswith("skipped local: prompt ~") and "> window 2,000" in skip["reason"], skip
    assert skip["detail"]["skipped"] is True and skip["detail"]["context_window"] == WINDOW
    assert [s["name"] for s in rec.steps if s["kind"] == "call"] == ["frontier"]
    assert rec.decision == "frontier"


def test_a_large_max_tokens_is_lowered_to_the_room_left(gateway, openai_up, anthropic_up):
    """Coding agents ask for tens of thousands of output tokens on every turn: a local model whose
    window holds the prompt with room to answer is called with max_tokens lowered to that room."""
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    window = 8000
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()),
                                  window))
    fits = oai(g).chat.completions.create(model="main", max_tokens=100, messages=[{"role": "user", "content": SHORT}])
    assert fits.choices[0].message.content == "local answer"
    assert openai_up.requests[-1].body["max_tokens"] == 100  # untouched when it fits
    raw = ant(g).messages.with_raw_response.create(model="main", max_tokens=20000,
                                                   messages=[{"role": "user", "content": LONG}])
    assert raw.parse().content[0].text == "local answer" and anthropic_up.requests == []
    sent = openai_up.requests[-1].body["max_tokens"]
    assert 1024 <= sent < window - 5000  # the room the ~6,000-token prompt leaves
    rec = record(g, raw.headers["x-tierwise-request-id"])
    assert f"local: max_tokens 20,000 -> {sent:,} to fit window {window:,}" in reasons(rec)
    assert rec.decision == "local"


def test_too_little_room_to_answer_skips_the_model(gateway, openai_up, anthropic_up):
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    window = 6800  # holds the ~6,000-token prompt, but with less than 1,024 tokens left to answer
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()),
                                  window))
    raw = ant(g).messages.with_raw_response.create(model="main", max_tokens=4000,
                                                   messages=[{"role": "user", "content": LONG}])
    assert raw.parse().content[0].text == "frontier answer" and openai_up.requests == []
    rec = record(g, raw.headers["x-tierwise-request-id"])
    assert f"+ max_tokens 4,000 > window {window:,}" in reasons(rec)


# ---------------------------------------------------------------------------- nothing can hold it


@pytest.fixture
def nothing_fits(gateway, openai_up, anthropic_up) -> GatewayServer:
    openai_up.default = ContextLimit(WINDOW, "llamacpp")
    anthropic_up.default = ContextLimit(WINDOW * 2, "anthropic")
    return gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()))


def test_anthropic_client_gets_prompt_is_too_long(nothing_fits):
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(nothing_fits).messages.create(model="main", max_tokens=100, messages=[{"role": "user", "content": LONG}])
    err = e.value.body["error"]
    assert e.value.status_code == 400 and err["type"] == "invalid_request_error"
    # Anthropic's wording, which Claude Code looks for to compact: the widest window tried.
    assert err["message"].startswith("prompt is too long: ") and err["message"].endswith(f" > {WINDOW * 2} maximum")
    n = int(err["message"].split(": ")[1].split(" ")[0])
    assert n > WINDOW * 2


def test_anthropic_client_streaming_gets_prompt_is_too_long(nothing_fits):
    with pytest.raises(anthropic.BadRequestError) as e:
        with ant(nothing_fits).messages.stream(model="main", max_tokens=100,
                                               messages=[{"role": "user", "content": LONG}]) as s:
            s.until_done()
    assert "prompt is too long" in e.value.body["error"]["message"]


def test_openai_client_gets_context_length_exceeded(nothing_fits):
    with pytest.raises(openai.BadRequestError) as e:
        oai(nothing_fits).chat.completions.create(model="main", messages=[{"role": "user", "content": LONG}])
    assert e.value.status_code == 400
    assert e.value.code == "context_length_exceeded" and e.value.type == "invalid_request_error"
    assert e.value.param == "messages"
    assert f"maximum context length is {WINDOW * 2} tokens" in e.value.message


def test_overflow_when_every_window_is_configured_too_small(gateway, openai_up, anthropic_up):
    cfg = with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=fallback_local_first()), 1000)
    cfg["models"]["frontier"]["context_window"] = 3000
    g = gateway(cfg)
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=100, messages=[{"role": "user", "content": LONG}])
    assert e.value.body["error"]["message"].endswith("> 3000 maximum")
    assert openai_up.requests == [] and anthropic_up.requests == []  # neither was called
    with pytest.raises(openai.BadRequestError) as oe:
        # ~2,500 tokens: fits the frontier's 3,000 but leaves it too little room to answer 3,000 more.
        oai(g).chat.completions.create(model="main", max_tokens=3000,
                                       messages=[{"role": "user", "content": "lorem ipsum dolor sit amet " * 370}])
    assert oe.value.code == "context_length_exceeded" and "in the completion" in oe.value.message


# ---------------------------------------------------------------------------- other route policies


def test_cascade_escalates_on_overflow(gateway, openai_up, anthropic_up):
    openai_up.default = ContextLimit(WINDOW, "vllm")
    anthropic_up.default = Reply(text="frontier answer")
    routes = {"main": {"policy": "cascade", "tiers": ["local", "frontier"]}}
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=routes), None))
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": LONG}])
    assert r.choices[0].message.content == "frontier answer"
    assert openai_up.default.refused == 1


def test_specialist_hands_off_when_the_default_overflows(gateway, openai_up, anthropic_up):
    """No window configured, so only the upstream's 400 can show the default cannot hold it."""
    openai_up.default = ContextLimit(WINDOW, "llamacpp")
    anthropic_up.default = Reply(text="frontier answer")
    routes = {"main": {"policy": "specialist", "default": "local",
                       "specialists": [{"target": "frontier", "detect": {"keywords": ["prove"]}}]}}
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=routes), None))
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": LONG}])
    assert raw.parse().choices[0].message.content == "frontier answer"
    rec = record(g, raw.headers["x-tierwise-request-id"])
    assert "local cannot hold the request" in reasons(rec)


def test_learned_route_moves_to_the_other_tier_on_overflow(gateway, openai_up, anthropic_up, tmp_path):
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    openai_up.default = ContextLimit(WINDOW, "ollama")
    anthropic_up.default = Reply(text="frontier answer")
    routes = {"main": {"policy": "learned", "router": router, "strong": "frontier", "weak": "local",
                       "threshold": 1e9}}  # everything scores "weak"
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=routes), None))
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": LONG}])
    assert r.choices[0].message.content == "frontier answer"
    assert openai_up.default.refused == 1


def test_cascade_none_of_whose_tiers_holds_it_answers_with_the_widest_window(gateway, openai_up, anthropic_up):
    """The client is told the largest window tried (the one a compacted prompt can fit), not the last."""
    openai_up.default = ContextLimit(WINDOW * 2, "vllm")
    anthropic_up.default = ContextLimit(WINDOW, "anthropic")
    routes = {"main": {"policy": "cascade", "tiers": ["local", "frontier"]}}
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=routes), None))
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": LONG}])
    assert e.value.code == "context_length_exceeded"
    assert f"maximum context length is {WINDOW * 2} tokens" in e.value.message


def test_specialist_with_summary_context_still_hands_off_when_the_summariser_overflows(gateway, openai_up,
                                                                                        anthropic_up):
    """The summariser (the default model) cannot hold what the default could not: pass it whole."""
    openai_up.default = ContextLimit(WINDOW, "llamacpp")
    anthropic_up.default = Reply(text="frontier answer")
    routes = {"main": {"policy": "specialist", "default": "local",
                       "specialists": [{"target": "frontier", "context": "summary",
                                        "detect": {"keywords": ["prove"]}}]}}
    g = gateway(with_local_window(two_tier_config(openai_up.url, anthropic_up.url, routes=routes), None))
    messages = [{"role": "user", "content": LONG}, {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": "And now the summary, please."}]
    r = oai(g).chat.completions.create(model="main", messages=messages)
    assert r.choices[0].message.content == "frontier answer"
    assert len(anthropic_up.last.body["messages"]) == 3  # the whole conversation went to the frontier
