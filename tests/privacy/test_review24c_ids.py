"""Review of attack-privacy4 (session 24, review24c): ids, signatures and blobs as real clients and real
providers write them must reach a privacy-enabled remote unchanged, with the pairs of a multi-turn tool
conversation intact (an id altered or a request refused sends a coding agent's turn to the local model
or breaks the provider's signature check).

Real HTTP, the official SDKs, the recording doubles of tests/privacy/test_attack_round2.py
(`pii: redact`, `secrets: block`, remote -> local fallback)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.test_attack_round2 import remote  # noqa: F401  (the fixture)

_RAW = hashlib.sha512(b"review24c").digest() * 6  # high-entropy bytes, as providers' blobs are
SIG_STD = base64.b64encode(b"\xfb\xff" + _RAW).decode()  # holds `+`, `/` and `=`
SIG_URL = base64.urlsafe_b64encode(b"\xfb\xff" + _RAW).decode()  # holds `-`, `_` and `=`
FERNET = "gAAAAAB" + base64.urlsafe_b64encode(_RAW[:200]).decode()  # OpenAI's encrypted_content

# Tool-call ids as providers and local servers issue them, and as Codex CLI and Claude Code echo them back.
TOOL_IDS = {
    "anthropic": "toolu_01A09q90qw90lq917835lq9X",
    "openai": "call_Qm3ZxW2v8kYp1LtR6nB0aJcD",
    "uuid": "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c",
    "llama.cpp counter": "call_0",
    "mistral 9 chars": "aB3dE6gH9",
    "vllm": "chatcmpl-tool-9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "ollama": "call_k2mq8z1v",
    "deepseek": "call_0_4b7c2f7e-1d2a-4c3b-9e8f-0a1b2c3d4e5f",
    "bedrock": "tooluse_Xk9Lm2Np4Qr6St8Uv0Wx_A",
    "kimi": "functions.get_weather:0",
    "gemini compat": "function-call-12345678901234567890",
}


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_claude_code_turn_with_thinking_and_server_tools_leaves_unchanged(remote):  # noqa: F811
    g, up = remote
    tid, sid = TOOL_IDS["anthropic"], "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE"
    msgs = [
        {"role": "user", "content": "fix the failing test in src/app.py"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me read the file first.", "signature": SIG_STD},
            {"type": "redacted_thinking", "data": SIG_URL},
            {"type": "server_tool_use", "id": sid, "name": "web_search", "input": {"query": "pytest fixtures"}},
            {"type": "web_search_tool_result", "tool_use_id": sid, "content": [
                {"type": "web_search_result", "url": "https://docs.pytest.org/en/stable/", "title": "pytest",
                 "encrypted_content": SIG_STD, "page_age": "April 30, 2025"}]},
            {"type": "tool_use", "id": tid, "name": "Read", "input": {"file_path": "/repo/src/app.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "def f():\n    return 1\n"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Now edit it.", "signature": SIG_URL},
            {"type": "tool_use", "id": "toolu_01Bz", "name": "Edit", "input": {"old": "1", "new": "2"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Bz", "content": "ok"}]},
    ]
    assert ant(g).messages.create(model="fb", max_tokens=50, messages=msgs).content
    assert up.requests, "refused: served by the local model"
    body = json.loads(up.requests[-1].raw)
    assert body["messages"] == msgs


@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
@pytest.mark.parametrize("kind", list(TOOL_IDS))
def test_chat_tool_ids_of_every_provider_leave_unchanged_and_paired(remote, kind):  # noqa: F811
    g, up = remote
    tid = TOOL_IDS[kind]
    msgs = [
        {"role": "user", "content": "what is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": tid, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": tid, "content": '{"temp_c": 21}'},
        {"role": "assistant", "content": "21 C. Anything else?"},
        {"role": "user", "content": "and in Lyon?"},
    ]
    assert oai(g).chat.completions.create(model="fb", messages=msgs).choices[0].message.content
    assert up.requests, "refused: served by the local model"
    raw = up.requests[-1].raw
    body = json.loads(raw)
    if "anthropic" in type(up).__name__.lower():  # the encoder narrows ids to Anthropic's alphabet
        use = body["messages"][1]["content"][-1]
        assert use["id"] == body["messages"][2]["content"][0]["tool_use_id"]
        assert use["id"] == "".join(c if c.isalnum() or c in "_-" else "_" for c in tid)
    else:
        assert body["messages"][1]["tool_calls"][0]["id"] == tid
        assert body["messages"][2]["tool_call_id"] == tid


@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_codex_responses_turn_leaves_unchanged(remote):  # noqa: F811
    """Codex CLI sends back its reasoning items (`rs_`, `encrypted_content`), messages (`msg_`) and
    function calls (`fc_` item ids, `call_` call ids) on every turn."""
    g, up = remote
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run the tests"}]},
        {"type": "reasoning", "id": "rs_68a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5", "summary": [],
         "encrypted_content": FERNET},
        {"type": "function_call", "id": "fc_68a1b2c3d4e5f6a7b8c9d0e1f2a3b4c6", "call_id": "call_Qm3ZxW2v8kYp1LtR6nB0aJcD",
         "name": "shell", "arguments": '{"command":["pytest","-q"]}'},
        {"type": "function_call_output", "call_id": "call_Qm3ZxW2v8kYp1LtR6nB0aJcD", "output": "3 passed"},
        {"type": "message", "role": "assistant", "id": "msg_68a1b2c3d4e5f6a7b8c9d0e1f2a3b4c7",
         "content": [{"type": "output_text", "text": "All 3 tests pass."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    assert oai(g).responses.create(model="fb", input=items, include=["reasoning.encrypted_content"]).output
    assert up.requests, "refused: served by the local model"
    raw = up.requests[-1].raw
    assert raw.count(b"call_Qm3ZxW2v8kYp1LtR6nB0aJcD") == 2, raw
