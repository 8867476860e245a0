"""Anthropic Messages wire format (`POST /v1/messages`), both directions, whole bodies and streams.

Client side: `decode_request`, `encode_response`, `StreamEncoder`, `encode_error`.
Upstream side: `encode_request`, `decode_response`, `StreamDecoder`.

The canonical model is shaped after this API, so most of the work here is validation (clear
400s naming the field) and the translation of requests that came from OpenAI clients, which
Anthropic is stricter about: strict role alternation, tool results as user blocks, no
`response_format`, no unsigned thinking, a required `max_tokens`.
"""

from __future__ import annotations

import re
from typing import Any, cast

import orjson

from tierwise.canonical import (
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    ImageBlock,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    OtherBlock,
    Ping,
    RedactedThinkingBlock,
    Request,
    Response,
    ResponseFormat,
    StopReason,
    StreamChunk,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    WireFormat,
)
from tierwise.errors import ContextOverflow, InvalidRequest, TierwiseError, UpstreamError
from tierwise.ids import new_id
from tierwise.providers.error_classes import classify
from tierwise.secret_scrub import scrub
from tierwise.wire._check import (
    INT_MAX,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_num,
    get_str,
    image_url,
    need,
    token_count,
)
from tierwise.wire.sse import SSEParser, event_message

FORMAT: WireFormat = "anthropic"

# Used when the canonical request carries no max_tokens (OpenAI makes it optional, Anthropic doesn't).
DEFAULT_MAX_TOKENS = 4096

_KNOWN = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "tools", "tool_choice", "metadata", "thinking",
})
KNOWN_FIELDS = _KNOWN  # top-level fields the codec models (the rest is `extra`)

STOP_REASONS: frozenset[str] = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"})
# Stop reasons newer API versions added that older clients would not know.
_STOP_ALIASES: dict[str, StopReason] = {"model_context_window_exceeded": "max_tokens"}

ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large", "rate_limit_error", "api_error", "overloaded_error",
})
_ERROR_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error", 529: "overloaded_error"}

# Block types tierwise does not model but must carry for same-format clients (documents,
# server tool results, MCP blocks). Anything else unknown is a client error.
_OPAQUE_BLOCKS = frozenset({"document", "search_result", "container_upload", "mcp_tool_use", "mcp_tool_result"})
# OtherBlocks that came from OpenAI clients and mean nothing to Anthropic.
_OPENAI_ONLY_BLOCKS = frozenset({"input_audio", "file", "image_url"})

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


def _new_id() -> str:
    return new_id("msg_")


def _is_opaque_type(t: Any) -> bool:
    return isinstance(t, str) and (t in _OPAQUE_BLOCKS or t.endswith("_tool_result"))


# ============================================================================ client side: decode


def _text_block(b: dict[str, Any], path: str) -> TextBlock:
    text = get_str(b, "text", path, required=True) or ""
    extra = {k: v for k, v in b.items() if k not in ("type", "text")}
    return TextBlock(text, extra=extra or None)


def _image_block(b: dict[str, Any], path: str) -> ImageBlock:
    src = get_dict(b, "source", path)
    need(src is not None, f"{path}.source", "is required")
    assert src is not None
    st = src.get("type")
    if st == "base64":
        media = get_str(src, "media_type", f"{path}.source", required=True)
        data = get_str(src, "data", f"{path}.source", required=True)
        return ImageBlock(media_type=media, data=data)
    if st == "url":
        return ImageBlock(url=image_url(get_str(src, "url", f"{path}.source", required=True) or "", f"{path}.source.url"))
    raise InvalidRequest(f"{path}.source.type: must be base64 or url, not {st!r}")


def _tool_use_block(b: dict[str, Any], path: str, *, server: bool) -> ToolUseBlock:
    tid = get_str(b, "id", path, required=True) or ""
    name = get_str(b, "name", path, required=True) or ""
    inp = b.get("input", {})
    need(isinstance(inp, dict), f"{path}.input", "must be an object")
    return ToolUseBlock(tid, name, inp, server=server)


def _tool_result_content(content: Any, path: str) -> list[TextBlock | ImageBlock]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    need(isinstance(content, list), path, "must be a string or an array of text and image blocks")
    out: list[Any] = []
    for i, c in enumerate(content):
        p = f"{path}[{i}]"
        need(isinstance(c, dict), p, "must be an object")
        t = c.get("type")
        if t == "text":
            out.append(_text_block(c, p))
        elif t == "image":
            out.append(_image_block(c, p))
        elif _is_opaque_type(t):
            out.append(OtherBlock(c))  # carried for same-format upstreams; other formats skip it
        else:
            raise InvalidRequest(f"{p}.type: must be text or image, not {t!r}")
    return out


def _thinking_block(b: dict[str, Any], path: str) -> ThinkingBlock:
    text = get_str(b, "thinking", path, required=True) or ""
    return ThinkingBlock(text, get_str(b, "signature", path) or None)


def _content_blocks(content: Any, path: str, role: str, prev_tool_ids: set[str]) -> list[Block]:
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    need(isinstance(content, list), path, "must be a string or an array of content blocks")
    out: list[Block] = []
    for i, b in enumerate(content):
        p = f"{path}[{i}]"
        need(isinstance(b, dict), p, "must be an object")
        t = b.get("type")
        if t == "text":
            out.append(_text_block(b, p))
        elif t == "image":
            out.append(_image_block(b, p))
        elif t in ("tool_use", "server_tool_use"):
            need(role == "assistant", f"{p}.type", f"{t} blocks are only allowed in assistant messages")
            out.append(_tool_use_block(b, p, server=t == "server_tool_use"))
        elif t == "tool_result":
            need(role == "user", f"{p}.type", "tool_result blocks are only allowed in user messages")
            tid = get_str(b, "tool_use_id", p, required=True) or ""
            need(tid in prev_tool_ids, f"{p}.tool_use_id",
                 f"{tid!r} does not match any tool_use block of the previous assistant message")
            is_error = get_bool(b, "is_error", p) or False
            out.append(ToolResultBlock(tid, _tool_result_content(b.get("content"), f"{p}.content"), is_error))
        elif t == "thinking":
            out.append(_thinking_block(b, p))
        elif t == "redacted_thinking":
            out.append(RedactedThinkingBlock(get_str(b, "data", p, required=True) or ""))
        elif _is_opaque_type(t):
            out.append(OtherBlock(b))
        else:
            raise InvalidRequest(f"{p}.type: unknown content block type {t!r}")
    return out


def _decode_messages(msgs: list[Any], system: list[TextBlock]) -> tuple[list[Message], bool]:
    """Messages in order; `system`-role messages (Claude Code sends them mid-conversation) are
    appended to `system`, since the canonical model and many upstreams only know a leading system prompt."""
    messages: list[Message] = []
    prev_tool_ids: set[str] = set()
    mid_system = False
    for i, m in enumerate(msgs):
        p = f"messages[{i}]"
        need(isinstance(m, dict), p, "must be an object")
        role = m.get("role")
        need(role in ("user", "assistant", "system"), f"{p}.role",
             f"must be user, assistant or system, not {role!r}")
        need("content" in m, f"{p}.content", "is required")
        if role == "system":
            system.extend(_decode_system(m["content"], f"{p}.content"))
            mid_system = True
            continue
        blocks = _content_blocks(m["content"], f"{p}.content", role, prev_tool_ids)
        if role == "assistant":
            prev_tool_ids = {b.id for b in blocks if isinstance(b, ToolUseBlock)}
        messages.append(Message(role, blocks))
    return messages, mid_system


def _decode_system(system: Any, path: str = "system") -> list[TextBlock]:
    if system is None:
        return []
    if isinstance(system, str):
        return [TextBlock(system)] if system else []
    need(isinstance(system, list), path, "must be a string or an array of text blocks")
    out = []
    for i, b in enumerate(system):
        p = f"{path}[{i}]"
        need(isinstance(b, dict) and b.get("type") == "text", p, "must be a text block")
        out.append(_text_block(b, p))
    return out


def _decode_tools(tools: list[Any]) -> list[Tool]:
    out = []
    for i, t in enumerate(tools):
        p = f"tools[{i}]"
        need(isinstance(t, dict), p, "must be an object")
        tt = t.get("type")
        if tt is not None and tt != "custom":
            # A server tool (web_search_20250305, code_execution, advisor ...): kept opaque.
            need(isinstance(tt, str), f"{p}.type", "must be a string")
            out.append(Tool(get_str(t, "name", p) or tt, raw=t))
            continue
        name = get_str(t, "name", p, required=True) or ""
        schema = t.get("input_schema")
        need(isinstance(schema, dict), f"{p}.input_schema", "is required and must be a JSON Schema object")
        out.append(Tool(name, get_str(t, "description", p), schema))
    return out


def _decode_tool_choice(tc: Any) -> ToolChoice | None:
    if tc is None:
        return None
    need(isinstance(tc, dict), "tool_choice", "must be an object")
    t = tc.get("type")
    need(t in ("auto", "any", "tool", "none"), "tool_choice.type", "must be auto, any, tool or none")
    name = get_str(tc, "name", "tool_choice", required=t == "tool")
    disable = get_bool(tc, "disable_parallel_tool_use", "tool_choice") or False
    return ToolChoice(t, name, disable)


def _decode_output_format(body: dict[str, Any]) -> ResponseFormat | None:
    """Anthropic structured outputs (`output_config.format`, earlier `output_format`) as the canonical
    response format, so an OpenAI-format upstream gets `response_format` (Claude Code's title request
    uses it). The Anthropic fields themselves stay in `extra` for an Anthropic upstream."""
    oc = body.get("output_config")
    fmt = oc.get("format") if isinstance(oc, dict) else None
    if fmt is None:
        fmt = body.get("output_format")
    if fmt is None:
        return None
    need(isinstance(fmt, dict), "output_config.format", "must be an object")
    if fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    need(isinstance(schema, dict), "output_config.format.schema", "must be an object")
    return ResponseFormat("json_schema", schema=schema)


def _native_output_format(req: Request) -> bool:
    """The client spoke Anthropic and asked for structured output natively: re-emitted as is."""
    oc = req.extra.get("output_config")
    return req.source_format == FORMAT and (
        (isinstance(oc, dict) and oc.get("format") is not None) or req.extra.get("output_format") is not None)


def _decode_thinking(th: Any) -> dict[str, Any] | None:
    if th is None:
        return None
    need(isinstance(th, dict), "thinking", "must be an object")
    t = th.get("type")
    need(t in ("enabled", "disabled", "adaptive"), "thinking.type", "must be enabled, disabled or adaptive")
    if t == "enabled":
        need(th.get("budget_tokens") is not None, "thinking.budget_tokens", "is required when thinking is enabled")
        get_int(th, "budget_tokens", "thinking", minimum=1024, maximum=INT_MAX - 1)  # max_tokens must exceed it
    return cast(dict[str, Any], th)


def _stop_sequences(body: dict[str, Any]) -> list[str]:
    v = get_list(body, "stop_sequences") or []
    need(all(isinstance(s, str) for s in v), "stop_sequences", "must be an array of strings")
    return list(v)


def decode_request(body: Any, headers: dict[str, str]) -> Request:
    need(isinstance(body, dict), "body", "must be a JSON object")
    model = get_str(body, "model", "", required=True) or ""
    need(body.get("max_tokens") is not None, "max_tokens", "is required")
    max_tokens = get_int(body, "max_tokens", minimum=1)
    msgs = get_list(body, "messages")
    need(msgs is not None and len(msgs) > 0, "messages", "must be a non-empty array")
    assert msgs is not None
    metadata = get_dict(body, "metadata") or {}
    user = metadata.get("user_id")
    system = _decode_system(body.get("system"))
    messages, mid_system = _decode_messages(msgs, system)
    # Anthropic takes system-role turns only with this beta flag; without it the body is re-encoded
    # (system turns folded into `system`) instead of forwarded as the client sent it.
    forward = not mid_system or "mid-conversation-system" in headers.get("anthropic-beta", "")
    thinking = _decode_thinking(body.get("thinking"))
    if thinking is not None and thinking.get("type") == "enabled" and max_tokens is not None:
        need(max_tokens > thinking["budget_tokens"], "max_tokens", "must be greater than thinking.budget_tokens")
    return Request(
        model=model,
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        temperature=get_num(body, "temperature", lo=0, hi=1),
        top_p=get_num(body, "top_p"),
        top_k=get_int(body, "top_k", minimum=0),
        stop=_stop_sequences(body),
        stream=get_bool(body, "stream") or False,
        tools=_decode_tools(get_list(body, "tools") or []),
        tool_choice=_decode_tool_choice(body.get("tool_choice")),
        response_format=_decode_output_format(body),
        thinking=thinking,
        metadata=metadata,
        user=user if isinstance(user, str) else None,
        extra={k: v for k, v in body.items() if k not in _KNOWN},
        source_format=FORMAT,
        source_body=body if forward else None,
        headers=headers,
    )


# ============================================================================ upstream side: encode


def _tool_id(tid: str) -> str:
    """Anthropic only accepts [A-Za-z0-9_-] in tool ids; some OpenAI-compatible servers use more."""
    return _TOOL_ID_BAD_CHARS.sub("_", tid) if tid else "toolu_missing"


def _image_out(b: ImageBlock) -> dict[str, Any]:
    if b.url:
        return {"type": "image", "source": {"type": "url", "url": b.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": b.media_type or "image/png",
                                        "data": b.data or ""}}


def _text_out(b: TextBlock) -> dict[str, Any]:
    return {"type": "text", "text": b.text, **b.extra} if b.extra else {"type": "text", "text": b.text}


def _document_from_openai_file(raw: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI `file` part with inline data (a PDF) maps onto an Anthropic document block."""
    f = raw.get("file")
    data = f.get("file_data") if isinstance(f, dict) else None
    if not isinstance(data, str) or not data.startswith("data:"):
        return None
    header, _, payload = data.partition(",")
    media = header[5:].split(";")[0] or "application/pdf"
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
    if t in _OPENAI_ONLY_BLOCKS:
        return None
    return b.raw


def _tool_result_out(b: ToolResultBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(b.tool_use_id)}
    parts: list[dict[str, Any]] = []
    for c in b.content:
        if isinstance(c, TextBlock):
            if c.text:
                parts.append(_text_out(c))
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
        return _text_out(b) if b.text.strip() else None
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


def _system_out(req: Request) -> str | list[dict[str, Any]] | None:
    blocks = [b for b in req.system if b.text]
    instruction = None if _native_output_format(req) else _response_format_instruction(req.response_format)
    if instruction:
        blocks = [*blocks, TextBlock(instruction)]
    if not blocks:
        return None
    if any(b.extra for b in blocks):  # cache_control and friends need the block form
        return [_text_out(b) for b in blocks]
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


def encode_request(req: Request, upstream_model: str) -> dict[str, Any]:
    if req.source_format == FORMAT and req.source_body is not None:
        forwarded = dict(req.source_body)
        forwarded["model"] = upstream_model
        return forwarded
    body: dict[str, Any] = {}
    if req.source_format == FORMAT:
        body.update(req.extra)  # fields Anthropic knows but canonical doesn't model
    body["model"] = upstream_model
    system = _system_out(req)
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


# ============================================================================ upstream side: decode


def _usage(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    return Usage(
        input_tokens=token_count(u.get("input_tokens")),
        output_tokens=token_count(u.get("output_tokens")),
        cache_read_tokens=token_count(u.get("cache_read_input_tokens")),
        cache_write_tokens=token_count(u.get("cache_creation_input_tokens")),
    )


def _stop_reason(v: Any) -> StopReason | None:
    if v is None:
        return None
    if not isinstance(v, str):
        return "end_turn"
    if v in STOP_REASONS:
        return cast(StopReason, v)
    return _STOP_ALIASES.get(v, "end_turn")


def _response_block(b: Any) -> Block:
    """A content block of an upstream message (lenient: the upstream is trusted to be well-formed)."""
    if not isinstance(b, dict):
        raise TypeError("content block is not an object")
    t = b.get("type")
    if not isinstance(t, str):
        raise TypeError("content block has no type")
    if t == "text":
        extra = {k: v for k, v in b.items() if k not in ("type", "text") and v is not None}
        return TextBlock(str(b.get("text") or ""), extra=extra or None)
    if t in ("tool_use", "server_tool_use"):
        inp = b.get("input")
        return ToolUseBlock(str(b.get("id") or ""), str(b.get("name") or ""), inp if isinstance(inp, dict) else {},
                            server=t == "server_tool_use")
    if t == "thinking":
        return ThinkingBlock(str(b.get("thinking") or ""), b.get("signature") or None)
    if t == "redacted_thinking":
        return RedactedThinkingBlock(str(b.get("data") or ""))
    return OtherBlock(b)


def _upstream_error(err: Any, *, started: bool) -> UpstreamError:
    e = err if isinstance(err, dict) else {}
    given = e.get("type")
    message = scrub(str(e.get("message") or "upstream error")[:4000])[:2000]
    where = "upstream error mid-stream" if started else "upstream error"
    c = classify(None, e, message)
    if c.error_class == "context_overflow" and not started:
        return ContextOverflow(f"{where}: {message}", tokens=c.tokens, limit=c.limit)
    etype = given if isinstance(given, str) and given in ERROR_TYPES else "api_error"
    status = {"rate_limit_error": 429, "invalid_request_error": 400, "overloaded_error": 503}.get(etype, 502)
    retryable = etype in ("api_error", "overloaded_error", "rate_limit_error")
    return UpstreamError(f"{where}: {message}", status=status, retryable=retryable, kind=etype,
                         error_class=c.error_class)


def decode_response(body: Any, raw: bytes | None = None) -> Response:
    if isinstance(body, dict) and body.get("type") == "error":
        raise _upstream_error(body.get("error"), started=False)
    try:
        content = body["content"]
        if not isinstance(content, list):
            raise TypeError("content is not a list")
        return Response(
            id=str(body.get("id") or _new_id()),
            model=str(body.get("model") or ""),
            content=[_response_block(b) for b in content],
            stop_reason=_stop_reason(body.get("stop_reason")) or "end_turn",
            stop_sequence=body.get("stop_sequence") if isinstance(body.get("stop_sequence"), str) else None,
            usage=_usage(body.get("usage")),
            raw=raw,
            raw_format=FORMAT,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError("upstream sent a message this gateway cannot read", retryable=True) from None


# ============================================================================ client side: encode


def _response_block_out(b: Block) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return _text_out(b)
    if isinstance(b, ToolUseBlock):
        return {"type": "server_tool_use" if b.server else "tool_use", "id": b.id, "name": b.name,
                "input": b.input}
    if isinstance(b, ThinkingBlock):
        return {"type": "thinking", "thinking": b.thinking, "signature": b.signature or ""}
    if isinstance(b, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": b.data}
    if isinstance(b, OtherBlock) and b.raw.get("type") not in _OPENAI_ONLY_BLOCKS:
        return b.raw
    return None  # images or tool results cannot appear in an assistant answer


def usage_out(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens, "cache_read_input_tokens": u.cache_read_tokens}


def _stop_out(s: StopReason | None) -> str:
    return s if s in STOP_REASONS else "end_turn"  # "error" and None have no Anthropic spelling


def encode_response(resp: Response, model: str) -> bytes:
    if resp.raw is not None and resp.raw_format == FORMAT:
        return resp.raw
    return orjson.dumps({
        "id": resp.id if resp.id.startswith("msg_") else _new_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [x for x in (_response_block_out(b) for b in resp.content) if x is not None],
        "stop_reason": _stop_out(resp.stop_reason),
        "stop_sequence": resp.stop_sequence,
        "usage": usage_out(resp.usage),
    })


def error_type(err: TierwiseError) -> str:
    if err.kind in ERROR_TYPES:
        return err.kind
    return _ERROR_BY_STATUS.get(err.status, "api_error")


def error_object(err: TierwiseError) -> dict[str, Any]:
    # Every error body and SSE error event this API's clients get is built here: the last net.
    if isinstance(err, ContextOverflow):
        return {"type": "error", "error": {"type": "invalid_request_error", "message": overflow_message(err)}}
    return {"type": "error", "error": {"type": error_type(err), "message": scrub(err.message)}}


def overflow_message(err: ContextOverflow) -> str:
    """Anthropic's own words for a prompt that does not fit: Claude Code (and other agents) look
    for "prompt is too long" (or the input + max_tokens form) and compact the conversation."""
    n, limit, out = err.tokens, err.limit, err.output
    if n is not None and limit is not None:
        if n > limit:
            return f"prompt is too long: {n} tokens > {limit} maximum"
        if out:
            return (f"input length and `max_tokens` exceed context limit: {n} + {out} > {limit}, "
                    "decrease input length or `max_tokens` and try again")
    if limit is not None:
        return f"prompt is too long for the context window of {limit} tokens"
    return "prompt is too long for the model's context window"


def encode_error(err: TierwiseError) -> bytes:
    return orjson.dumps(error_object(err))


# ============================================================================ streams

_DELTA_IN = {"text_delta": ("text", "text"), "input_json_delta": ("input_json", "partial_json"),
             "thinking_delta": ("thinking", "thinking"), "signature_delta": ("signature", "signature")}
_DELTA_OUT = {v[0]: (k, v[1]) for k, v in _DELTA_IN.items()}


class StreamDecoder:
    """Anthropic SSE from an upstream → canonical events, one SSE message at a time."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.started = False
        self.stop_seen = False
        self.ended = False

    def feed(self, data: bytes) -> list[StreamChunk]:
        """The events of every complete message in `data`, as one chunk (its raw bytes the messages'
        bytes), except that an upstream error event comes as a chunk of its own without raw bytes."""
        out: list[StreamChunk] = []
        events: list[StreamEvent] = []
        raws: list[bytes] = []
        for msg in self.parser.feed(data):
            if not msg.data:
                raws.append(msg.raw)
                continue
            try:
                obj = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                raise UpstreamError("upstream sent a stream event that is not valid JSON", retryable=True) from None
            if type(obj) is not dict:
                raise UpstreamError("upstream sent a stream event that is not an object", retryable=True)
            evs = self._events(obj, msg.event)
            if evs and isinstance(evs[-1], StreamError):
                # Re-encoded by the gateway, never relayed raw: servers that imitate the Anthropic
                # API (llama-server) send error objects outside its schema.
                if raws:
                    out.append(StreamChunk(events, b"".join(raws), FORMAT))
                    events, raws = [], []
                out.append(StreamChunk(evs, None, FORMAT))
                continue
            events += evs
            raws.append(msg.raw)
        if raws:
            out.append(StreamChunk(events, b"".join(raws) if len(raws) > 1 else raws[0], FORMAT))
        return out

    def _events(self, obj: dict[str, Any], sse_event: str | None) -> list[StreamEvent]:
        t = obj.get("type") or sse_event
        try:
            if t == "message_start":
                m = obj["message"]
                self.started = True
                return [MessageStart(str(m.get("id") or _new_id()), str(m.get("model") or ""), _usage(m.get("usage")))]
            if t == "content_block_start":
                block = _response_block(obj["content_block"])
                if isinstance(block, ToolUseBlock):
                    block.input = {}  # the input arrives as input_json deltas
                return [BlockStart(int(obj["index"]), block)]
            if t == "content_block_delta":
                d = obj["delta"]
                kind = _DELTA_IN.get(d.get("type"))
                if kind is None:  # citations_delta and future kinds: nothing canonical to say
                    return []
                return [BlockDelta(int(obj["index"]), kind[0], str(d.get(kind[1]) or ""))]  # type: ignore[arg-type]
            if t == "content_block_stop":
                return [BlockStop(int(obj["index"]))]
            if t == "message_delta":
                d = obj.get("delta") or {}
                self.stop_seen = True
                seq = d.get("stop_sequence")
                return [MessageDelta(_stop_reason(d.get("stop_reason")) or "end_turn", _usage(obj.get("usage")),
                                     seq if isinstance(seq, str) else None)]
            if t == "message_stop":
                self.ended = True
                return [MessageStop()]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UpstreamError(f"upstream sent a malformed {t} event", retryable=not self.started) from None
        if t == "error" or sse_event == "error":
            # Anthropic nests the error under "error"; llama-server sends its own object as the data.
            detail = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            err = _upstream_error(detail, started=self.started)
            if not self.started:
                raise err  # nothing reached the client yet: let a fallback take over
            self.ended = True  # the upstream closes after an error; finish() must not add another
            return [StreamError(err.kind, err.message)]
        return []  # ping and unknown event types

    def finish(self) -> list[StreamChunk]:
        if self.ended:
            return []
        if self.stop_seen:  # a server that ends without message_stop
            self.ended = True
            return [StreamChunk([MessageStop()], None, FORMAT)]
        raise UpstreamError("upstream stream ended early", retryable=True)


class StreamEncoder:
    """Canonical events → Anthropic SSE for a client.

    Anthropic clients place blocks by `index` into the message's content list, so indices are
    renumbered 0, 1, 2 … in the order blocks start, whatever the producer used.
    """

    def __init__(self, model: str, request: Request) -> None:
        self.model = model
        self.id = _new_id()
        self.started = False
        self.index: dict[int, int] = {}
        self.open: set[int] = set()
        self.delta_sent = False
        self.stopped = False

    def _start(self, usage: Usage | None = None) -> bytes:
        if self.started:
            return b""
        self.started = True
        u = usage or Usage()
        message: dict[str, Any] = {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": usage_out(u)}
        return (event_message("message_start", {"type": "message_start", "message": message})
                + event_message("ping", {"type": "ping"}))

    def _block_start(self, index: int, block: Block) -> bytes:
        if isinstance(block, TextBlock):
            cb: dict[str, Any] | None = _text_out(block)
        elif isinstance(block, ToolUseBlock):
            cb = {"type": "server_tool_use" if block.server else "tool_use", "id": block.id, "name": block.name,
                  "input": {}}
        else:
            cb = _response_block_out(block)
        if cb is None:
            return b""
        out = len(self.index)
        self.index[index] = out
        self.open.add(out)
        return event_message("content_block_start", {"type": "content_block_start", "index": out,
                                                     "content_block": cb})

    def _close_all(self) -> bytes:
        return b"".join(self._block_stop(i) for i in sorted(self.open))

    def _block_stop(self, out: int) -> bytes:
        self.open.discard(out)
        return event_message("content_block_stop", {"type": "content_block_stop", "index": out})

    def _delta(self, ev: BlockDelta) -> bytes:
        pre = b""
        if ev.index not in self.index:  # a delta for a block nobody started: start one of its kind
            start: Block = ThinkingBlock("") if ev.delta_type in ("thinking", "signature") else TextBlock("")
            if ev.delta_type == "input_json":
                return b""  # no id or name to start a tool_use block with
            pre = self._block_start(ev.index, start)
        out = self.index[ev.index]
        if out not in self.open:
            return pre
        dtype, field = _DELTA_OUT[ev.delta_type]
        return pre + event_message("content_block_delta", {"type": "content_block_delta", "index": out,
                                                           "delta": {"type": dtype, field: ev.value}})

    def _message_delta(self, ev: MessageDelta) -> bytes:
        self.delta_sent = True
        u = ev.usage
        usage: dict[str, Any] = {"output_tokens": u.output_tokens}
        if u.input_tokens:
            usage["input_tokens"] = u.input_tokens
        if u.cache_read_tokens:
            usage["cache_read_input_tokens"] = u.cache_read_tokens
        if u.cache_write_tokens:
            usage["cache_creation_input_tokens"] = u.cache_write_tokens
        return self._close_all() + event_message("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": _stop_out(ev.stop_reason),
                                               "stop_sequence": ev.stop_sequence}, "usage": usage})

    def encode(self, ev: StreamEvent) -> bytes:
        if self.stopped:
            return b""
        if isinstance(ev, MessageStart):
            return self._start(ev.usage)
        if isinstance(ev, StreamError):
            return self.encode_error(TierwiseError(ev.message, kind=ev.error_type))
        pre = self._start()
        if isinstance(ev, BlockDelta):
            return pre + self._delta(ev)
        if isinstance(ev, BlockStart):
            return pre + self._block_start(ev.index, ev.block)
        if isinstance(ev, BlockStop):
            out = self.index.get(ev.index)
            return pre + (self._block_stop(out) if out is not None and out in self.open else b"")
        if isinstance(ev, MessageDelta):
            return pre + self._message_delta(ev)
        if isinstance(ev, MessageStop):
            if not self.delta_sent:
                pre += self._message_delta(MessageDelta("end_turn"))
            self.stopped = True
            return pre + event_message("message_stop", {"type": "message_stop"})
        if isinstance(ev, Ping):
            return pre + event_message("ping", {"type": "ping"})
        return pre

    def encode_error(self, err: TierwiseError) -> bytes:
        return event_message("error", error_object(err))
