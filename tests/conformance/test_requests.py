"""Requests through every pairing: Claude Code's captured requests, thinking history with
signatures, reasoning history, count_tokens, and (a place for) context-overflow errors.

Claude Code's requests are the ones the real CLI sent (tests/clients/transcripts/), replayed with
their headers; the SDK requests are made live by the official SDKs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conformance.sse_client import AnthropicStream, post_stream
from tests.doubles import Reply
from tests.doubles.overflow import ContextLimit

CC_DIR = Path(__file__).resolve().parents[1] / "clients" / "transcripts"
SIGNATURE = "ErUBCkYIBxgCIkB0aGlzIGlzIGEgcmVjb3JkZWQgc2lnbmF0dXJl+/=="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFjT7ZZW0NzAyRec0FK3tjpBhJ5SWLEa=="


def route_to(gateway, up, kind: str):  # noqa: ANN001, ANN201
    base = up.url + "/v1" if kind == "openai" else up.url
    return gateway({"ledger": {"enabled": False},
                    "providers": {"up": {"kind": kind, "base_url": base}},
                    "models": {"m": {"provider": "up", "model": "upstream-model"}},
                    "routes": {"main": ["m"]}, "server": {"default_route": "main"}})


@pytest.fixture(params=["openai", "anthropic"])
def upstream(request: pytest.FixtureRequest, gateway, openai_up, anthropic_up):  # noqa: ANN001, ANN201
    kind = request.param
    up = openai_up if kind == "openai" else anthropic_up
    up.default = Reply(text="ok from upstream")
    return kind, up, route_to(gateway, up, kind)


# ---------------------------------------------------------------------------- Claude Code's requests

def claude_code_requests() -> list[tuple[str, dict[str, Any]]]:
    """One captured request per (session, label): what the real CLI sent."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(CC_DIR.glob("claude_code_*/session_*.json")):
        for r in json.loads(path.read_text())["requests"]:
            if r["path"] == "/v1/messages" and r["method"] == "POST":
                out.setdefault(f"{path.stem}:{r['answered']}", r)
    return sorted(out.items())


@pytest.mark.parametrize("name,captured", claude_code_requests(), ids=[n for n, _ in claude_code_requests()])
def test_claude_code_request_replayed_to_each_upstream(name: str, captured: dict[str, Any], upstream) -> None:  # noqa: ANN001
    kind, up, g = upstream
    body = captured["body"]
    headers = {k: v for k, v in captured["headers"].items() if k not in ("content-type", "content-length")}
    import urllib.request

    fmt = (body.get("output_config") or {}).get("format")
    answer = "ok from upstream"
    if fmt:  # the title request asks for structured output (checked: wire/strict_output.py), its schema's object
        assert fmt["schema"]["required"] == ["title"], fmt
        answer = json.dumps({"title": answer})
        up.script(Reply(text=answer))
    req = urllib.request.Request(g.url + "/v1/messages?beta=true", data=json.dumps(body).encode(), method="POST",
                                 headers={**headers, "content-type": "application/json", "x-api-key": "test"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        raw = r.read()
    s = AnthropicStream.read(raw)
    assert "".join(b.text for b in s.blocks if b.type == "text") == answer
    sent = up.requests[-1].body
    if kind == "anthropic":
        # same format: the body goes through as Claude Code sent it, only the model renamed
        assert {**sent, "model": body["model"]} == body
        assert up.requests[-1].headers.get("anthropic-beta") == captured["headers"]["anthropic-beta"]
        return
    assert sent["messages"][0]["role"] == "system"
    assert len(sent.get("tools") or []) == len(body.get("tools") or [])
    # every tool_use Claude Code sent back arrives as a tool call with its result
    calls = [c["id"] for m in sent["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    results = [m["tool_call_id"] for m in sent["messages"] if m["role"] == "tool"]
    uses = [b["id"] for m in body["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_use"]
    assert calls == uses and results == uses
    if fmt:  # Claude Code's structured title request keeps its schema on an OpenAI-format upstream
        rf = sent.get("response_format") or {}
        assert rf.get("type") == "json_schema" and rf["json_schema"]["schema"] == fmt["schema"], rf


# ---------------------------------------------------------------------------- thinking history

def thinking_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call the tool.", "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED},
            {"type": "tool_use", "id": "toolu_01Hist", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Hist", "content": "12C"}]},
    ]


WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.mark.parametrize("reencode", [False, True], ids=["passthrough", "reencoded"])
def test_thinking_signatures_round_trip_unchanged_to_anthropic(gateway, anthropic_up, reencode: bool) -> None:  # noqa: ANN001
    """Anthropic client → Anthropic upstream: thinking, its signature and redacted thinking reach the
    upstream byte-identical, also when the gateway re-encodes the body (here: a mid-conversation
    system turn without its beta flag, which Anthropic would refuse as sent)."""
    g = route_to(gateway, anthropic_up, "anthropic")
    anthropic_up.default = Reply(text="It is 12C.")
    msgs = thinking_history()
    if reencode:
        msgs = [*msgs[:2], {"role": "system", "content": "Be brief."}, msgs[2]]
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0))
    r = client.messages.create(model="main", max_tokens=3000, tools=[WEATHER],
                               thinking={"type": "enabled", "budget_tokens": 1024}, messages=msgs)
    assert r.content[0].text == "It is 12C."
    sent = anthropic_up.requests[-1].body
    [assistant] = [m for m in sent["messages"] if m["role"] == "assistant"]
    assert assistant["content"][:2] == [
        {"type": "thinking", "thinking": "I should call the tool.", "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": REDACTED}]
    if reencode:
        assert not any(m["role"] == "system" for m in sent["messages"])


def test_thinking_history_to_an_openai_upstream_keeps_the_tool_turns(gateway, openai_up) -> None:  # noqa: ANN001
    """Anthropic client → OpenAI upstream: signatures mean nothing there and never leave; the tool
    call and its result arrive paired."""
    g = route_to(gateway, openai_up, "openai")
    openai_up.default = Reply(text="It is 12C.")
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0))
    r = client.messages.create(model="main", max_tokens=3000, tools=[WEATHER], messages=thinking_history())
    assert r.content[0].text == "It is 12C."
    raw = json.dumps(openai_up.requests[-1].body)
    assert SIGNATURE not in raw and REDACTED not in raw
    sent = openai_up.requests[-1].body["messages"]
    [assistant] = [m for m in sent if m["role"] == "assistant"]
    assert assistant["tool_calls"][0]["id"] == "toolu_01Hist"
    assert [m for m in sent if m["role"] == "tool"][0]["tool_call_id"] == "toolu_01Hist"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_reasoning_history_from_an_openai_client(gateway, openai_up, anthropic_up, kind: str) -> None:  # noqa: ANN001
    """OpenAI client sending back a reasoning server's `reasoning_content`: relayed to an OpenAI
    upstream; to Anthropic (which would reject unsigned thinking) it is left out, not a 400."""
    up = openai_up if kind == "openai" else anthropic_up
    up.default = Reply(text="4")
    g = route_to(gateway, up, kind)
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0))
    r = client.chat.completions.create(model="main", messages=[
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},  # type: ignore[misc]
        {"role": "user", "content": "Sure?"}])
    assert r.choices[0].message.content == "4"
    sent = up.requests[-1].body["messages"]
    assistant = [m for m in sent if m["role"] == "assistant"][0]
    if kind == "openai":
        assert assistant.get("reasoning_content") == "Two plus two is four."
    else:
        assert all(b.get("type") != "thinking" for b in assistant["content"] if isinstance(b, dict)) \
            if isinstance(assistant["content"], list) else assistant["content"] == "4"


# ---------------------------------------------------------------------------- count_tokens

def test_count_tokens_on_each_upstream(upstream) -> None:  # noqa: ANN001
    """`POST /v1/messages/count_tokens` through the anthropic SDK: an Anthropic upstream counts
    (its exact answer comes back, the body forwarded without max_tokens); any other gets an estimate."""
    kind, up, g = upstream
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0))
    kw: dict[str, Any] = {"model": "main", "system": "You are terse.", "tools": [WEATHER],
                          "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": thinking_history()}
    n = client.messages.count_tokens(**kw).input_tokens
    assert n > 0
    counts = [r for r in up.requests if r.path.endswith("/count_tokens")]
    if kind == "anthropic":
        [sent] = counts
        assert "max_tokens" not in sent.body and sent.body["model"] == "upstream-model"
        assert sent.body["messages"][1]["content"][0]["signature"] == SIGNATURE
        bigger = client.messages.count_tokens(**{**kw, "system": "You are terse. " * 200}).input_tokens
        assert bigger > n
    else:
        assert counts == []  # OpenAI-format servers have no such endpoint: estimated, nothing sent
        bigger = client.messages.count_tokens(**{**kw, "system": "You are terse. " * 200}).input_tokens
        assert bigger > n + 500


def test_count_tokens_rejects_a_bad_body_in_anthropic_shape(upstream) -> None:  # noqa: ANN001
    kind, up, g = upstream
    status, _, raw = post_stream(g.url, "/v1/messages/count_tokens", {"model": "main", "messages": "nope"}, "anthropic")
    assert status == 400
    err = json.loads(raw)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------- context overflow
# (client kind, upstream kind, the upstream's overflow answer as a doubles script item, a check of
# what the client must receive in its own provider's overflow shape). Each upstream refuses the
# way its server really does (tests/doubles/overflow.py); the client must get its own provider's
# shape, with the numbers when the upstream gave them (Ollama does not), which Claude Code and
# the SDKs read to compact and retry.


def _openai_overflow(numbers: bool) -> Any:
    def check(status: int, headers: dict[str, str], raw: bytes) -> None:
        assert status == 400, raw
        err = json.loads(raw)["error"]
        assert err["type"] == "invalid_request_error" and err["code"] == "context_length_exceeded", err
        assert err["message"].startswith("This model's maximum context length "), err
        if numbers:  # the upstream said them: the client hears them
            assert re.search(r"maximum context length is 100 tokens", err["message"]), err
    return check


def _anthropic_overflow(numbers: bool) -> Any:
    def check(status: int, headers: dict[str, str], raw: bytes) -> None:
        assert status == 400, raw
        body = json.loads(raw)
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        assert body["error"]["message"].startswith("prompt is too long"), body
        if numbers:
            assert re.fullmatch(r"prompt is too long: \d+ tokens > 100 maximum", body["error"]["message"]), body
    return check


CONTEXT_OVERFLOW_CASES: list[tuple[str, str, Any, Any]] = [
    (client, up_kind, ContextLimit(window=100, server=server),
     (_openai_overflow if client == "openai" else _anthropic_overflow)(server != "ollama"))
    for client in ("openai", "anthropic")
    for up_kind, server in (("openai", "llamacpp"), ("openai", "vllm"), ("openai", "openai"),
                            ("openai", "ollama"), ("anthropic", "anthropic"))
]


@pytest.mark.parametrize("client_kind,upstream_kind,upstream_answer,check", CONTEXT_OVERFLOW_CASES)
def test_context_overflow_reaches_the_client_in_its_own_shape(gateway, openai_up, anthropic_up, client_kind: str,  # noqa: ANN001
                                                              upstream_kind: str, upstream_answer: Any,
                                                              check: Any) -> None:
    up = openai_up if upstream_kind == "openai" else anthropic_up
    up.default = upstream_answer
    g = route_to(gateway, up, upstream_kind)
    path = "/v1/chat/completions" if client_kind == "openai" else "/v1/messages"
    body = {"model": "main", "max_tokens": 100, "messages": [{"role": "user", "content": "x " * 1000}]}
    status, headers, raw = post_stream(g.url, path, body, client_kind)
    check(status, headers, raw)


if not CONTEXT_OVERFLOW_CASES:  # an empty parameter set would be a skip, and CI allows none
    del test_context_overflow_reaches_the_client_in_its_own_shape
