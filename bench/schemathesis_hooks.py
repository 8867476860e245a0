"""schemathesis hooks for bench/schemathesis_run.py (loaded through SCHEMATHESIS_HOOKS).

JSON Schema cannot say that a tool result must answer a tool call of an earlier message (an
id in one array element referring to another; Responses function_call_output items too, and a
previous_response_id must name a stored response), or that Anthropic's `max_tokens` must exceed the
thinking budget (one field bounding another); both APIs require it and the gateway checks it
(the OpenAPI document says so in prose). Schema-valid bodies that break that rule are dropped
from the positive cases only, so positive_data_acceptance judges the rules the document can
state; negative cases are left as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode


def _openai_pairs_ok(messages: list[Any]) -> bool:
    ids: set[Any] = set()
    for m in messages:
        if not isinstance(m, dict):
            return True
        if m.get("role") == "assistant":
            for tc in m.get("tool_calls") or []:
                if isinstance(tc, dict):
                    ids.add(tc.get("id"))
        if m.get("role") == "tool" and m.get("tool_call_id") not in ids:
            return False
    return True


def _anthropic_pairs_ok(messages: list[Any]) -> bool:
    prev: set[Any] = set()
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), list):
            if isinstance(m, dict) and m.get("role") == "assistant":
                prev = set()
            continue
        blocks = [b for b in m["content"] if isinstance(b, dict)]
        if m.get("role") == "assistant":
            prev = {b.get("id") for b in blocks if b.get("type") in ("tool_use", "server_tool_use")}
        elif m.get("role") == "user":
            if any(b.get("type") == "tool_result" and b.get("tool_use_id") not in prev for b in blocks):
                return False
    return True


def _responses_ok(body: dict[str, Any]) -> bool:
    """The Responses rules the document states in prose: a previous_response_id names a response the
    gateway stored (none exist in a fuzz run), a function_call_output answers an earlier
    function_call, and the input holds some conversation (not only system/developer messages)."""
    if body.get("previous_response_id") is not None:
        return False
    inp = body.get("input")
    if not isinstance(inp, list):
        return True
    calls: set[Any] = set()
    conversation = False
    for it in inp:
        if not isinstance(it, dict):
            return True
        t = it.get("type", "message")
        if t == "function_call":
            calls.add(it.get("call_id"))
            conversation = True
        elif t == "function_call_output":
            if it.get("call_id") not in calls:
                return False
            conversation = True
        elif t == "message":
            conversation = conversation or it.get("role") in ("user", "assistant")
        elif t == "reasoning":
            texts = [p for k in ("content", "summary") for p in (it.get(k) or [])]
            conversation = conversation or bool(texts or it.get("encrypted_content"))
    return conversation


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return True
    body = case.body
    if case.operation.path in ("/v1/responses", "/v1/responses/input_tokens") and isinstance(body, dict):
        return _responses_ok(body)
    if case.operation.path == "/v1/tierwise/cache/invalidate" and isinstance(body, dict):
        return body.get("tenant") is None  # (prose: a gateway key names only its own tenant)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return True
    if case.operation.path == "/v1/chat/completions":
        return _openai_pairs_ok(body["messages"])
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        # another rule across fields: max_tokens must exceed the thinking budget
        mt, budget = body.get("max_tokens"), thinking.get("budget_tokens")
        if isinstance(mt, (int, float)) and isinstance(budget, (int, float)) and mt <= budget:
            return False
    return _anthropic_pairs_ok(body["messages"])
