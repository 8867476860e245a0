"""Canonical Request → Anthropic Messages request body for an upstream (`encode_request`).

A same-format request is forwarded as the client sent it; the rest is the translation of requests
that came from OpenAI clients, which Anthropic is stricter about: strict role alternation, tool
results as user blocks, no `response_format`, no unsigned thinking, a required `max_tokens`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tierwise.canonical import (
    Block,
    ImageBlock,
    Message,
    OtherBlock,
    RedactedThinkingBlock,
    Request,
    ResponseFormat,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from tierwise.errors import InvalidRequest
from tierwise.wire.anthropic_messages.native_output import native_format
from tierwise.wire.anthropic_messages.response import FORMAT, OPENAI_ONLY_BLOCKS, text_out
from tierwise.wire.request_parts import split_data_url, wants_audio

# Used when the canonical request carries no max_tokens (OpenAI makes it optional, Anthropic doesn't).
DEFAULT_MAX_TOKENS = 4096

_TOOL_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")

# What response_format becomes, since Anthropic has no structured-output switch.
_JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose before or after it and no "
    "Markdown code fences."
)
_JSON_SCHEMA_INSTRUCTION = (
    "Respond with a single valid JSON value that conforms to the JSON Schema below, and nothing else: "
    "no prose before or after it and no Markdown code fences.\nJSON Schema:\n"
)

# reasoning_effort (OpenAI) → thinking budget (Anthropic).
_EFFORT_BUDGET = {"low": 1024, "medium": 4096, "high": 16384}


def _native_output_format(req: Request) -> bool:
    """The client spoke Anthropic and asked for structured output natively: re-emitted as is."""
    oc = req.extra.get("output_config")
    return req.source_format == FORMAT and (
        (isinstance(oc, dict) and oc.get("format") is not None) or req.extra.get("output_format") is not None)


def _tool_id(tid: str) -> str:
    """Anthropic only accepts [A-Za-z0-9_-] in tool ids; some OpenAI-compatible servers use more."""
    return _TOOL_ID_BAD_CHARS.sub("_", tid) if tid else "toolu_missing"


def _image_out(b: ImageBlock) -> dict[str, Any]:
    if b.url:
        return {"type": "image", "source": {"type": "url", "url": b.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": b.media_type or "image/png",
                                        "data": b.data or ""}}


def _document_from_openai_file(raw: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI `file` part with inline data (a PDF) maps onto an Anthropic document block."""
    f = raw.get("file")
    data = f.get("file_data") if isinstance(f, dict) else None
    if not isinstance(data, str) or not data.startswith("data:"):
        return None
    media, payload = split_data_url(data, "application/pdf")
    return {"type": "document", "source": {"type": "base64", "media_type": media, "data": payload}}


def _other_out(b: OtherBlock) -> dict[str, Any] | None:
    t = b.raw.get("type")
    if t == "file":
        doc = _document_from_openai_file(b.raw)
        if doc is None:
            raise InvalidRequest("file content parts need inline file_data to reach an Anthropic model")
        return doc
    if t == "input_audio":
        raise InvalidRequest("audio input cannot be sent to an Anthropic model")
    if t in OPENAI_ONLY_BLOCKS:
        return None
    return b.raw


def _tool_result_out(b: ToolResultBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(b.tool_use_id)}
    parts: list[dict[str, Any]] = []
    for c in b.content:
        if isinstance(c, TextBlock):
            if c.text:
                parts.append(text_out(c))
        elif isinstance(c, ImageBlock):
            parts.append(_image_out(c))
        elif isinstance(c, OtherBlock):  # type: ignore[unreachable]
            parts.append(c.raw)  # type: ignore[unreachable]
    if parts:
        plain = all(p.keys() == {"type", "text"} for p in parts)
        out["content"] = "".join(p["text"] for p in parts) if plain else parts
    if b.is_error:
        out["is_error"] = True
    return out


def _block_out(b: Block) -> dict[str, Any] | None:
    """One canonical block as an Anthropic request block, or None where Anthropic would reject it."""
    if isinstance(b, TextBlock):
        # Anthropic rejects empty (and whitespace-only) text blocks.
        return text_out(b) if b.text.strip() else None
    if isinstance(b, ImageBlock):
        return _image_out(b)
    if isinstance(b, ToolUseBlock):
        return {"type": "server_tool_use" if b.server else "tool_use", "id": _tool_id(b.id), "name": b.name,
                "input": b.input}
    if isinstance(b, ToolResultBlock):
        return _tool_result_out(b)
    if isinstance(b, ThinkingBlock):
        # Thinking without a signature came from another model: Anthropic rejects it, so drop it.
        if not b.signature:
            return None
        return {"type": "thinking", "thinking": b.thinking, "signature": b.signature}
    if isinstance(b, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": b.data}
    return _other_out(b)


def encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Canonical messages → Anthropic turns: empty ones dropped, same-role neighbours merged."""
    out: list[dict[str, Any]] = []
    for m in messages:
        blocks = [x for x in (_block_out(b) for b in m.content) if x is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == m.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    for msg in out:
        content = msg["content"]
        if msg["role"] == "user":
            # tool_result blocks must lead a user turn; the sort is stable, so order is kept otherwise.
            content.sort(key=lambda x: x.get("type") != "tool_result")
        if len(content) == 1 and content[0].keys() == {"type", "text"}:
            msg["content"] = content[0]["text"]
    return out


def _response_format_instruction(rf: ResponseFormat | None) -> str | None:
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_schema" and rf.schema:
        return _JSON_SCHEMA_INSTRUCTION + orjson.dumps(rf.schema).decode()
    return _JSON_OBJECT_INSTRUCTION


def _system_out(req: Request, instruct: bool = True) -> str | list[dict[str, Any]] | None:
    blocks = [b for b in req.system if b.text]
    instruction = None if _native_output_format(req) or not instruct else _response_format_instruction(
        req.response_format)
    if instruction:
        blocks = [*blocks, TextBlock(instruction)]
    if not blocks:
        return None
    if any(b.extra for b in blocks):  # cache_control and friends need the block form
        return [text_out(b) for b in blocks]
    return "\n\n".join(b.text for b in blocks)


def _thinking_out(req: Request) -> dict[str, Any] | None:
    if req.thinking is not None:
        return req.thinking
    budget = _EFFORT_BUDGET.get(req.reasoning_effort or "")
    return {"type": "enabled", "budget_tokens": budget} if budget else None


def _tool_out(t: Tool) -> dict[str, Any]:
    if t.raw is not None:
        return t.raw
    out: dict[str, Any] = {"name": t.name, "input_schema": t.input_schema}
    if t.description:
        out["description"] = t.description
    return out


def encode_tool_choice(tc: ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": tc.type}
    if tc.type == "tool":
        out["name"] = tc.name
    if tc.disable_parallel and tc.type != "none":
        out["disable_parallel_tool_use"] = True
    return out


def encode_request(req: Request, upstream_model: str, native_output: bool = False) -> dict[str, Any]:
    """`native_output`: the model takes Anthropic's structured output (config `structured_output: native`)."""
    if req.source_format == FORMAT and req.source_body is not None:
        forwarded = dict(req.source_body)
        forwarded["model"] = upstream_model
        mt = forwarded.get("max_tokens")
        if req.max_tokens is not None and mt != req.max_tokens and not (isinstance(mt, int) and mt < req.max_tokens):
            forwarded["max_tokens"] = req.max_tokens  # lowered by the gateway (providers/window.py `lowered`)
        return forwarded
    body: dict[str, Any] = {}
    if req.source_format == FORMAT:
        body.update(req.extra)  # fields Anthropic knows but canonical doesn't model
    elif "modalities" in req.extra and wants_audio(req.extra["modalities"]):  # forwarded by server.forwarding
        raise InvalidRequest("modalities: an Anthropic model cannot answer with audio")
    body["model"] = upstream_model
    native = native_format(req) if native_output and not _native_output_format(req) else None
    if native is not None:
        body["output_config"] = {**(body.get("output_config") or {}), "format": native[0]}
    system = _system_out(req, instruct=native is None or native[1])
    if system is not None:
        body["system"] = system
    # Anthropic needs one turn with content; an OpenAI request may carry only a system prompt
    # (or empty turns), which OpenAI answers: give it a minimal user turn rather than a 400.
    body["messages"] = encode_messages(req.messages) or [{"role": "user", "content": "."}]
    thinking = _thinking_out(req)
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    thinking_on = thinking is not None and thinking.get("type") in ("enabled", "adaptive")
    if thinking is not None:
        body["thinking"] = thinking
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and req.max_tokens is None and max_tokens <= budget:
            max_tokens = budget + DEFAULT_MAX_TOKENS  # the budget must fit inside max_tokens
        elif isinstance(budget, int) and req.thinking is None and max_tokens <= budget:
            # A budget tierwise derived from reasoning effort must fit the client's max_tokens too:
            # half of it for thinking, or no thinking when that is under Anthropic's 1024 minimum.
            if max_tokens // 2 >= 1024:
                body["thinking"] = {"type": "enabled", "budget_tokens": max_tokens // 2}
            else:
                del body["thinking"]
                thinking_on = False
    body["max_tokens"] = max_tokens
    # Anthropic allows temperature only in [0, 1] and none of temperature/top_k with thinking.
    if req.temperature is not None and not thinking_on:
        body["temperature"] = min(max(req.temperature, 0.0), 1.0)
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None and not thinking_on:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.stream:
        body["stream"] = True
    if req.tools:
        body["tools"] = [_tool_out(t) for t in req.tools]
        if req.tool_choice is not None:
            body["tool_choice"] = encode_tool_choice(req.tool_choice)
    if req.source_format == FORMAT and req.metadata:
        body["metadata"] = req.metadata
    elif req.user:
        body["metadata"] = {"user_id": req.user}
    return body
