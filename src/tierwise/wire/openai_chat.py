"""OpenAI Chat Completions wire format, both directions, whole bodies and streams.

Client side: `decode_request`, `encode_response`, `StreamEncoder`, `encode_error`.
Upstream side: `encode_request`, `decode_response`, `StreamDecoder`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from tierwise.canonical import (
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    Choice,
    ImageBlock,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    OtherBlock,
    Request,
    Response,
    ResponseFormat,
    StopReason,
    StreamChunk,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    TokenLogprob,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    WireFormat,
)
from tierwise.errors import BudgetExceeded, ContextOverflow, InvalidRequest, TierwiseError, UpstreamError
from tierwise.ids import new_id
from tierwise.providers.error_classes import stream_error
from tierwise.secret_scrub import scrub
from tierwise.wire._check import (
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_num,
    get_str,
    image_url,
    need,
    stop_list,
    token_count,
)
from tierwise.wire.sse import SSEParser, data_message

FORMAT: WireFormat = "openai"

_KNOWN = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "n", "logprobs", "top_logprobs",
    "reasoning_effort", "metadata", "user",
})
KNOWN_FIELDS = _KNOWN  # top-level fields the codec models (the rest is `extra`)

FINISH_TO_STOP: dict[str, StopReason] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
    "content_filter": "refusal",
}
STOP_TO_FINISH = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "refusal": "content_filter", "pause_turn": "stop", "error": "stop",
}
# The gateway's error kinds in OpenAI's own vocabulary: (type, code). The kinds are named after
# Anthropic's finer types; an OpenAI client must never see those names (OpenAI has no
# `overloaded_error`, `authentication_error` or `not_found_error` type, and no 529).
ERROR_TYPES: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", None),
    "not_found_error": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", None),
    "context_length_exceeded": ("invalid_request_error", "context_length_exceeded"),
    "content_policy_violation": ("invalid_request_error", "content_policy_violation"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
    "timeout_error": ("server_error", None),
}


def _new_id() -> str:
    return new_id("chatcmpl-")


# ============================================================================ client side: decode


def _image_from_url(url: str, detail: str | None, path: str) -> ImageBlock:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media = header[5:].split(";")[0] or "image/png"
        return ImageBlock(media_type=media, data=data, detail=detail)
    return ImageBlock(url=image_url(url, path), detail=detail)


def _content_parts(content: Any, path: str, *, allow_images: bool) -> list[Block]:
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    need(isinstance(content, list), path, "must be a string or an array of content parts")
    out: list[Block] = []
    for i, part in enumerate(content):
        p = f"{path}[{i}]"
        need(isinstance(part, dict), p, "must be an object")
        t = part.get("type")
        if t == "text":
            out.append(TextBlock(get_str(part, "text", p, required=True) or ""))
        elif t == "refusal":
            out.append(TextBlock(get_str(part, "refusal", p, required=True) or ""))
        elif t == "image_url":
            need(allow_images, p, "images are only allowed in user messages")
            iu = part.get("image_url")
            if isinstance(iu, str):
                out.append(_image_from_url(iu, None, f"{p}.image_url"))
            else:
                need(isinstance(iu, dict) and isinstance(iu.get("url"), str), f"{p}.image_url",
                     "must be an object with a string `url`")
                out.append(_image_from_url(iu["url"], iu.get("detail"), f"{p}.image_url.url"))
        elif t == "file":
            # Inline data only: a file_id names a file in the operator's upstream account.
            f = part.get("file")
            need(isinstance(f, dict) and isinstance(f.get("file_data"), str) and f["file_data"].startswith("data:"),
                 f"{p}.file.file_data", "is required (a data: URL)")
            need("file_id" not in f, f"{p}.file.file_id", "names a file in the gateway's upstream account: "
                 "send the file as file_data")  # the part goes upstream as sent
            out.append(OtherBlock(part))
        elif t == "input_audio":
            out.append(OtherBlock(part))
        else:
            raise InvalidRequest(f"{p}.type: unknown content part type {t!r}")
    return out


def decode_request(body: Any, headers: dict[str, str]) -> Request:
    need(isinstance(body, dict), "body", "must be a JSON object")
    model = get_str(body, "model", "", required=True) or ""
    msgs = get_list(body, "messages")
    need(msgs is not None and len(msgs) > 0, "messages", "must be a non-empty array")
    assert msgs is not None
    system: list[TextBlock] = []
    messages: list[Message] = []
    tool_ids: set[str] = set()
    for i, m in enumerate(msgs):
        p = f"messages[{i}]"
        need(isinstance(m, dict), p, "must be an object")
        role = m.get("role")
        if role in ("system", "developer"):
            for b in _content_parts(m.get("content", ""), f"{p}.content", allow_images=False):
                if isinstance(b, TextBlock):
                    system.append(b)
        elif role == "user":
            need("content" in m, f"{p}.content", "is required")
            messages.append(Message("user", _content_parts(m["content"], f"{p}.content", allow_images=True)))
        elif role == "assistant":
            blocks: list[Block] = []
            rc = m.get("reasoning_content")
            if isinstance(rc, str) and rc:
                blocks.append(ThinkingBlock(rc))
            if m.get("content") is not None:
                blocks.extend(_content_parts(m["content"], f"{p}.content", allow_images=False))
            calls = get_list(m, "tool_calls", p) or []
            for j, tc in enumerate(calls):
                tp = f"{p}.tool_calls[{j}]"
                need(isinstance(tc, dict), tp, "must be an object")
                fn = get_dict(tc, "function", tp)
                need(fn is not None, f"{tp}.function", "is required")
                assert fn is not None
                name = get_str(fn, "name", f"{tp}.function", required=True) or ""
                args = fn.get("arguments") or "{}"
                need(isinstance(args, str), f"{tp}.function.arguments", "must be a JSON string")
                try:
                    parsed = orjson.loads(args)
                except orjson.JSONDecodeError:
                    # A model's malformed call echoed back in the history: OpenAI takes it, so keep it.
                    parsed = args
                if not isinstance(parsed, dict):
                    parsed = {"value": parsed}
                tid = get_str(tc, "id", tp)
                if tid is None:  # an explicit id, even "", is what the tool message answers
                    tid = f"call_{i}_{j}"
                tool_ids.add(tid)
                blocks.append(ToolUseBlock(tid, name, parsed))
            messages.append(Message("assistant", blocks))
        elif role in ("tool", "function"):
            tid = get_str(m, "tool_call_id", p, required=role == "tool")
            if tid is None:
                tid = str(m.get("name") or "")
            need(tid in tool_ids, f"{p}.tool_call_id",
                 f"{tid!r} does not match any tool call of an earlier assistant message")
            content = [b for b in _content_parts(m.get("content", ""), f"{p}.content", allow_images=False)
                       if isinstance(b, (TextBlock, ImageBlock))]
            block = ToolResultBlock(tid, content)  # type: ignore[arg-type]
            # Consecutive tool messages answer one assistant turn: keep them in one user message.
            if messages and messages[-1].role == "user" and messages[-1].content and all(
                    isinstance(b, ToolResultBlock) for b in messages[-1].content):
                messages[-1].content.append(block)
            else:
                messages.append(Message("user", [block]))
        else:
            raise InvalidRequest(f"{p}.role: unknown role {role!r} (expected system, developer, user, assistant, tool)")

    max_tokens = get_int(body, "max_completion_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = get_int(body, "max_tokens", minimum=1)
    tools: list[Tool] = []
    for i, t in enumerate(get_list(body, "tools") or []):
        p = f"tools[{i}]"
        need(isinstance(t, dict), p, "must be an object")
        need(t.get("type", "function") == "function", f"{p}.type", "must be function")
        fn = get_dict(t, "function", p)
        need(fn is not None, f"{p}.function", "is required")
        assert fn is not None
        params = fn.get("parameters")
        params = {"type": "object", "properties": {}} if params is None else params
        need(isinstance(params, dict), f"{p}.function.parameters", "must be a JSON Schema object")
        tools.append(Tool(get_str(fn, "name", f"{p}.function", required=True) or "",
                          get_str(fn, "description", f"{p}.function"), params))
    tool_choice = _decode_tool_choice(body.get("tool_choice"))
    ptc = get_bool(body, "parallel_tool_calls")
    if ptc is False:
        tool_choice = tool_choice or ToolChoice("auto")
        tool_choice.disable_parallel = True
    n = get_int(body, "n", minimum=1) or 1
    get_dict(body, "stream_options")
    stream = get_bool(body, "stream") or False
    metadata = get_dict(body, "metadata") or {}
    return Request(
        model=model,
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        temperature=get_num(body, "temperature", lo=0, hi=2),
        top_p=get_num(body, "top_p", lo=0, hi=1),
        stop=stop_list(body.get("stop"), "stop"),
        stream=stream,
        tools=tools,
        tool_choice=tool_choice,
        response_format=_decode_response_format(body.get("response_format")),
        n=n,
        logprobs=get_bool(body, "logprobs") or False,
        top_logprobs=get_int(body, "top_logprobs", minimum=0, maximum=20),
        reasoning_effort=get_str(body, "reasoning_effort", ""),
        metadata=metadata,
        user=get_str(body, "user", ""),
        extra={k: v for k, v in body.items() if k not in _KNOWN},
        source_format=FORMAT,
        source_body=body,
        headers=headers,
    )


def _decode_tool_choice(tc: Any) -> ToolChoice | None:
    if tc is None:
        return None
    if isinstance(tc, str):
        mapping = {"auto": "auto", "none": "none", "required": "any"}
        need(tc in mapping, "tool_choice", "must be auto, none, required or a function choice")
        return ToolChoice(mapping[tc])  # type: ignore[arg-type]
    need(isinstance(tc, dict), "tool_choice", "must be a string or an object")
    need(tc.get("type", "function") == "function", "tool_choice.type", "must be function")
    fn = tc.get("function")
    need(isinstance(fn, dict) and isinstance(fn.get("name"), str), "tool_choice.function.name", "is required")
    return ToolChoice("tool", fn["name"])


def _decode_response_format(rf: Any) -> ResponseFormat | None:
    if rf is None:
        return None
    need(isinstance(rf, dict), "response_format", "must be an object")
    t = rf.get("type")
    if t == "json_schema":
        js = rf.get("json_schema")
        need(isinstance(js, dict), "response_format.json_schema", "is required for type json_schema")
        schema = js.get("schema")
        need(schema is None or isinstance(schema, dict), "response_format.json_schema.schema", "must be an object")
        return ResponseFormat("json_schema", schema, js.get("name"), js.get("strict"))
    need(t in ("text", "json_object"), "response_format.type", "must be text, json_object or json_schema")
    return ResponseFormat(t)  # type: ignore[arg-type]


# ============================================================================ upstream side: encode


def _image_url(b: ImageBlock) -> dict[str, Any]:
    url = b.url if b.url else f"data:{b.media_type or 'image/png'};base64,{b.data}"
    iu: dict[str, Any] = {"url": url}
    if b.detail:
        iu["detail"] = b.detail
    return {"type": "image_url", "image_url": iu}


def _user_content(blocks: Sequence[Block]) -> str | list[dict[str, Any]]:
    if all(isinstance(b, TextBlock) for b in blocks):
        return "".join(b.text for b in blocks)  # type: ignore[union-attr]
    parts: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            parts.append({"type": "text", "text": b.text})
        elif isinstance(b, ImageBlock):
            parts.append(_image_url(b))
        elif isinstance(b, OtherBlock) and b.raw.get("type") in ("input_audio", "file"):
            parts.append(b.raw)
    return parts


def _tool_result_text(b: ToolResultBlock) -> str:
    text = "".join(c.text for c in b.content if isinstance(c, TextBlock))
    if any(isinstance(c, ImageBlock) for c in b.content):
        text += "\n[image omitted]"
    return ("Error: " + text) if b.is_error else text


def encode_messages(req: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": "\n\n".join(b.text for b in req.system)})
    for m in req.messages:
        if m.role == "user":
            results = [b for b in m.content if isinstance(b, ToolResultBlock)]
            rest = [b for b in m.content if not isinstance(b, ToolResultBlock)]
            for r in results:
                out.append({"role": "tool", "tool_call_id": r.tool_use_id, "content": _tool_result_text(r)})
                images = [c for c in r.content if isinstance(c, ImageBlock)]
                if images:  # OpenAI tool messages can't carry images: pass them in a user turn
                    out.append({"role": "user", "content": [_image_url(i) for i in images]})
            if rest or not results:
                out.append({"role": "user", "content": _user_content(rest)})
        else:
            text = "".join(b.text for b in m.content if isinstance(b, TextBlock))
            calls = [
                {"id": b.id, "type": "function",
                 "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
                for b in m.content if isinstance(b, ToolUseBlock) and not b.server
            ]
            msg: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
            if calls:
                msg["tool_calls"] = calls
            out.append(msg)
    return out


def encode_tool_choice(tc: ToolChoice) -> Any:
    if tc.type == "tool":
        return {"type": "function", "function": {"name": tc.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[tc.type]


def encode_request(req: Request, upstream_model: str) -> dict[str, Any]:
    if req.source_format == FORMAT and req.source_body is not None:
        body = dict(req.source_body)
        body["model"] = upstream_model
        if req.stream:
            so = body.get("stream_options")
            if not (isinstance(so, dict) and so.get("include_usage")):
                body["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
        return body
    body = {"model": upstream_model, "messages": encode_messages(req)}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = req.stop
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    tools = [t for t in req.tools if t.raw is None]
    if tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, **({"description": t.description} if t.description
                                                                  else {}), "parameters": t.input_schema}}
            for t in tools
        ]
        if req.tool_choice is not None:
            body["tool_choice"] = encode_tool_choice(req.tool_choice)
            if req.tool_choice.disable_parallel:
                body["parallel_tool_calls"] = False
    rf = req.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_schema":
            js: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                js["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": js}
        else:
            body["response_format"] = {"type": "json_object"}
    if req.n > 1:
        body["n"] = req.n
    if req.logprobs:
        body["logprobs"] = True
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    if req.reasoning_effort:
        body["reasoning_effort"] = req.reasoning_effort
    if req.user:
        body["user"] = req.user
    return body


# ============================================================================ upstream side: decode


def _logprobs(lp: Any) -> list[TokenLogprob] | None:
    if not isinstance(lp, dict) or not isinstance(lp.get("content"), list):
        return None
    out = []
    for t in lp["content"]:
        if isinstance(t, dict):
            top = [(x.get("token", ""), float(x.get("logprob", 0.0))) for x in t.get("top_logprobs") or []
                   if isinstance(x, dict)]
            out.append(TokenLogprob(str(t.get("token", "")), float(t.get("logprob", 0.0)), top))
    return out


def _usage(u: Any, timings: Any = None) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    cached = 0
    det = u.get("prompt_tokens_details")
    prompt = token_count(u.get("prompt_tokens"))
    if isinstance(det, dict):
        cached = min(prompt, token_count(det.get("cached_tokens")))
    elif isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
        # llama.cpp builds without prompt_tokens_details say it in `timings.cache_n` only.
        cached = max(0, min(prompt, timings["cache_n"]))
    if not cached:  # DeepSeek reports its cache hits in a field of its own
        hit = u.get("prompt_cache_hit_tokens")
        cached = hit if type(hit) is int and 0 < hit <= prompt else 0
    return Usage(input_tokens=prompt - cached, output_tokens=token_count(u.get("completion_tokens")),
                 cache_read_tokens=cached)


def _message_blocks(msg: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    rc = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(rc, str) and rc:
        blocks.append(ThinkingBlock(rc))
    content = msg.get("content")
    if isinstance(content, str) and content:
        blocks.append(TextBlock(content))
    elif isinstance(content, list):
        blocks.extend(TextBlock(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    if isinstance(msg.get("refusal"), str) and msg["refusal"]:
        blocks.append(TextBlock(msg["refusal"]))
    for i, tc in enumerate(msg.get("tool_calls") or []):
        fn = tc.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {"_raw_arguments": fn.get("arguments")}
        if not isinstance(args, dict):
            args = {"value": args}
        blocks.append(ToolUseBlock(str(tc.get("id") or f"call_{i}"), str(fn.get("name") or ""), args))
    return blocks


def decode_response(body: Any, raw: bytes | None = None) -> Response:
    try:
        choices = body["choices"]
        first = choices[0]
        msg = first.get("message") or {}
        blocks = _message_blocks(msg)
        stop = FINISH_TO_STOP.get(first.get("finish_reason") or "stop", "end_turn")
        if any(isinstance(b, ToolUseBlock) for b in blocks) and stop == "end_turn":
            stop = "tool_use"  # some local servers say "stop" after a tool call
        extra = []
        for c in choices[1:]:
            cb = _message_blocks(c.get("message") or {})
            extra.append(Choice(cb, FINISH_TO_STOP.get(c.get("finish_reason") or "stop", "end_turn"),
                                _logprobs(c.get("logprobs"))))
        return Response(
            id=str(body.get("id") or _new_id()),
            model=str(body.get("model") or ""),
            content=blocks,
            stop_reason=stop,
            usage=_usage(body.get("usage"), body.get("timings")),
            logprobs=_logprobs(first.get("logprobs")),
            extra_choices=extra,
            raw=raw,
            raw_format=FORMAT,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError("upstream sent a chat completion this gateway cannot read", retryable=True) from None


# ============================================================================ client side: encode


def _message_out(blocks: list[Block]) -> dict[str, Any]:
    text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    calls = [
        {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
        for b in blocks if isinstance(b, ToolUseBlock) and not b.server
    ]
    msg: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if calls:
        msg["tool_calls"] = calls
    thinking = "".join(b.thinking for b in blocks if isinstance(b, ThinkingBlock))
    if thinking:
        msg["reasoning_content"] = thinking
    return msg


def _logprobs_out(lps: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if lps is None:
        return None
    return {"content": [
        {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
         "top_logprobs": [{"token": a, "logprob": b, "bytes": list(a.encode())} for a, b in t.top]}
        for t in lps
    ]}


def usage_out(u: Usage) -> dict[str, Any]:
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": u.output_tokens,
                           "total_tokens": prompt + u.output_tokens}
    if u.cache_read_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cache_read_tokens}
    return out


def encode_response(resp: Response, model: str) -> bytes:
    if resp.raw is not None and resp.raw_format == FORMAT:
        return resp.raw
    choices = [{"index": 0, "message": _message_out(resp.content),
                "finish_reason": STOP_TO_FINISH.get(resp.stop_reason or "end_turn", "stop"),
                "logprobs": _logprobs_out(resp.logprobs)}]
    for i, c in enumerate(resp.extra_choices, start=1):
        choices.append({"index": i, "message": _message_out(c.content),
                        "finish_reason": STOP_TO_FINISH.get(c.stop_reason or "end_turn", "stop"),
                        "logprobs": _logprobs_out(c.logprobs)})
    return orjson.dumps({
        "id": resp.id if resp.id.startswith("chatcmpl") else _new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage_out(resp.usage),
    })


def error_object(err: TierwiseError) -> dict[str, Any]:
    # Every error body and SSE error event this API's clients get is built here: the last net.
    if isinstance(err, ContextOverflow):
        return {"error": {"message": overflow_message(err), "type": "invalid_request_error", "param": "messages",
                          "code": "context_length_exceeded"}}
    etype: str
    code: str | None
    if isinstance(err, BudgetExceeded):
        etype, code = "insufficient_quota", "insufficient_quota"
    else:
        etype, code = ERROR_TYPES.get(err.kind) or _type_by_status(err.status)
    return {"error": {"message": scrub(err.message), "type": etype, "param": None, "code": code}}


def _type_by_status(status: int) -> tuple[str, str | None]:
    if status == 429:
        return "requests", "rate_limit_exceeded"
    return ("invalid_request_error", None) if 400 <= status < 500 else ("server_error", None)


def overflow_message(err: ContextOverflow) -> str:
    """OpenAI's own words for a prompt that does not fit, with the numbers the gateway knows."""
    n, limit, out = err.tokens, err.limit, err.output
    if limit is None or n is None:
        return "This model's maximum context length was exceeded. Please reduce the length of the messages."
    if out and n <= limit:
        return (f"This model's maximum context length is {limit} tokens. However, you requested {n + out} tokens "
                f"({n} in the messages, {out} in the completion). Please reduce the length of the messages or "
                "completion.")
    return (f"This model's maximum context length is {limit} tokens. However, your messages resulted in {n} "
            "tokens. Please reduce the length of the messages.")


def encode_error(err: TierwiseError) -> bytes:
    return orjson.dumps(error_object(err))


# ============================================================================ streams


class StreamDecoder:
    """OpenAI chat.completion.chunk SSE from an upstream → canonical events."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.started = False
        self.open: int | None = None  # index of the open block
        self.open_kind: str | None = None
        self.next_index = 0
        self.tools: dict[int, int] = {}
        self.tool_ids: dict[str, int] = {}  # tool-call id -> its position, for servers that omit `index`
        self.stop: StopReason | None = None
        self.usage = Usage()
        self.ended = False
        self.delta_sent = False

    def _close(self, ev: list[StreamEvent]) -> None:
        if self.open is not None:
            ev.append(BlockStop(self.open))
            self.open = None
            self.open_kind = None

    def _ensure(self, kind: str, ev: list[StreamEvent]) -> int:
        if self.open is not None and self.open_kind == kind:
            return self.open
        self._close(ev)
        idx = self.next_index
        self.next_index += 1
        ev.append(BlockStart(idx, TextBlock("") if kind == "text" else ThinkingBlock("")))
        self.open, self.open_kind = idx, kind
        return idx

    def _end(self, ev: list[StreamEvent]) -> None:
        self._close(ev)
        if not self.delta_sent:
            ev.append(MessageDelta(self.stop or "end_turn", self.usage))
            self.delta_sent = True
        ev.append(MessageStop())
        self.ended = True

    def feed(self, data: bytes) -> list[StreamChunk]:
        """The events of every complete message in `data`, as one chunk (its raw bytes the messages'
        bytes), except that an upstream error event comes as a chunk of its own without raw bytes."""
        out: list[StreamChunk] = []
        ev: list[StreamEvent] = []
        raws: list[bytes] = []
        for msg in self.parser.feed(data):
            d = msg.data
            if d == b"[DONE]":
                if not self.ended:
                    if not self.started:
                        raise UpstreamError("upstream stream ended before it started", retryable=True)
                    self._end(ev)
                raws.append(msg.raw)
                continue
            if not d:
                continue
            try:
                obj = orjson.loads(d)
            except orjson.JSONDecodeError:
                raise UpstreamError("upstream sent a stream chunk that is not valid JSON", retryable=True) from None
            if type(obj) is not dict:
                raise UpstreamError("upstream sent a stream chunk that is not an object", retryable=True)
            if "error" in obj and "choices" not in obj:
                e = obj["error"]
                message = e.get("message", "upstream error") if isinstance(e, dict) else e
                message = scrub(str(message)[:4000])[:2000]  # bounded, as every upstream error text
                if not self.started:  # nothing reached the client yet: let a fallback take over
                    raise stream_error("upstream error", str((e.get("type") if isinstance(e, dict) else None)
                                                             or "api_error"), str(message), retryable=True)
                if raws:
                    out.append(StreamChunk(ev, b"".join(raws), FORMAT))
                    ev, raws = [], []
                self.ended = True
                # Re-encoded by the gateway, never relayed raw: the upstream's error object
                # need not follow the client's schema.
                out.append(StreamChunk([StreamError("api_error", f"upstream error: {message}")], None, FORMAT))
                continue
            if self.open_kind == "text" and not self.ended:
                # The common case, a text delta and nothing else, without the general walk.
                choices = obj.get("choices")
                if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict and not obj.get("usage"):
                    ch = choices[0]
                    delta = ch.get("delta")
                    if (type(delta) is dict and len(delta) == 1 and ch.get("finish_reason") is None
                            and not ch.get("logprobs") and not ch.get("index")):
                        content = delta.get("content")
                        if type(content) is str:
                            if content:
                                ev.append(BlockDelta(self.open, "text", content))  # type: ignore[arg-type]
                            raws.append(msg.raw)
                            continue
            try:
                self._chunk(obj, ev)
            except (KeyError, IndexError, TypeError, AttributeError, ValueError):  # off the schema: not a crash
                raise UpstreamError("upstream sent a malformed stream chunk", retryable=True) from None
            raws.append(msg.raw)
        if raws:
            out.append(StreamChunk(ev, b"".join(raws) if len(raws) > 1 else raws[0], FORMAT))
        return out

    def _chunk(self, obj: dict[str, Any], ev: list[StreamEvent]) -> None:
        if not self.started:
            self.started = True
            ev.append(MessageStart(str(obj.get("id") or _new_id()), str(obj.get("model") or "")))
        if obj.get("usage"):
            u = _usage(obj["usage"], obj.get("timings"))
            self.usage = u
            if self.stop is not None and not obj.get("choices"):
                # The usage chunk follows the finish chunk: report it now, don't wait for [DONE].
                self._close(ev)
                if not self.delta_sent:
                    ev.append(MessageDelta(self.stop, u))
                    self.delta_sent = True
        for ch in obj.get("choices") or []:
            if not isinstance(ch, dict) or (ch.get("index") or 0) != 0:
                continue
            delta = ch.get("delta") or {}
            if "reasoning_content" in delta or "reasoning" in delta:
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    idx = self._ensure("thinking", ev)
                    ev.append(BlockDelta(idx, "thinking", reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                idx = self._ensure("text", ev)
                lp = ch.get("logprobs")
                ev.append(BlockDelta(idx, "text", content, logprobs=_logprobs(lp) if lp else None))
            for tc in delta.get("tool_calls") or ():
                ti = tc.get("index")
                tid = tc.get("id")
                if type(ti) is not int:
                    # Some servers (Gemini's OpenAI endpoint) send each call whole and without
                    # `index`: a new id is a new call, anything else continues the last one.
                    if isinstance(tid, str) and tid and tid not in self.tool_ids:
                        ti = len(self.tools)
                    else:
                        ti = self.tool_ids.get(tid, max(self.tools, default=0)) if isinstance(tid, str) else \
                            max(self.tools, default=0)
                fn = tc.get("function") or {}
                if isinstance(tid, str) and tid:
                    self.tool_ids.setdefault(tid, ti)
                if ti not in self.tools:
                    self._close(ev)
                    idx = self.next_index
                    self.next_index += 1
                    self.tools[ti] = idx
                    ev.append(BlockStart(idx, ToolUseBlock(str(tc.get("id") or f"call_{ti}"), str(fn.get("name") or ""),
                                                           {})))
                    self.open, self.open_kind = idx, "tool"
                args = fn.get("arguments")
                if args and isinstance(args, str):
                    ev.append(BlockDelta(self.tools[ti], "input_json", args))
            fr = ch.get("finish_reason")
            if fr:
                self.stop = FINISH_TO_STOP.get(fr, "end_turn")
                if self.tools and self.stop == "end_turn":
                    self.stop = "tool_use"
                self._close(ev)

    def finish(self) -> list[StreamChunk]:
        if self.ended:
            return []
        if self.stop is not None:  # a server that ends without [DONE]
            ev: list[StreamEvent] = []
            self._end(ev)
            return [StreamChunk(ev, None, FORMAT)]
        raise UpstreamError("upstream stream ended early", retryable=True)



class StreamEncoder:
    """Canonical events → OpenAI chat.completion.chunk SSE for a client."""

    def __init__(self, model: str, request: Request) -> None:
        self.model = model
        self.id = _new_id()
        self.created = int(time.time())
        so = request.extra.get("stream_options")
        self.include_usage = isinstance(so, dict) and bool(so.get("include_usage"))
        self.tool_ordinal: dict[int, int] = {}
        self.tool_args_sent: set[int] = set()  # block indexes of tool calls with some argument text
        self.usage = Usage()
        self.started = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if logprobs is not None:
            choice["logprobs"] = logprobs
        return data_message({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                             "model": self.model, "choices": [choice]})

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self._chunk({"role": "assistant", "content": ""})

    def encode(self, ev: StreamEvent) -> bytes:
        k = ev.kind
        if k == "block_delta":
            assert isinstance(ev, BlockDelta)
            pre = self._start()
            if ev.delta_type == "text":
                return pre + self._chunk({"content": ev.value}, logprobs=_logprobs_out(ev.logprobs))
            if ev.delta_type == "input_json":
                ordinal = self.tool_ordinal.get(ev.index)
                if ordinal is None or not ev.value:
                    return pre
                self.tool_args_sent.add(ev.index)
                return pre + self._chunk({"tool_calls": [{"index": ordinal, "function": {"arguments": ev.value}}]})
            if ev.delta_type == "thinking":
                return pre + self._chunk({"reasoning_content": ev.value})
            return pre
        if k == "message_start":
            assert isinstance(ev, MessageStart)
            self.usage.input_tokens = ev.usage.input_tokens
            self.usage.cache_read_tokens = ev.usage.cache_read_tokens
            self.usage.cache_write_tokens = ev.usage.cache_write_tokens
            return self._start()
        if k == "block_start":
            assert isinstance(ev, BlockStart)
            b = ev.block
            pre = self._start()
            if isinstance(b, ToolUseBlock) and not b.server:
                ordinal = len(self.tool_ordinal)
                self.tool_ordinal[ev.index] = ordinal
                return pre + self._chunk({"tool_calls": [{"index": ordinal, "id": b.id, "type": "function",
                                                          "function": {"name": b.name, "arguments": ""}}]})
            if isinstance(b, TextBlock) and b.text:
                return pre + self._chunk({"content": b.text})
            return pre
        if k == "message_delta":
            assert isinstance(ev, MessageDelta)
            u = ev.usage
            if u.input_tokens:
                self.usage.input_tokens = u.input_tokens
            if u.output_tokens:
                self.usage.output_tokens = u.output_tokens
            if u.cache_read_tokens:
                self.usage.cache_read_tokens = u.cache_read_tokens
            return self._start() + self._chunk({}, STOP_TO_FINISH.get(ev.stop_reason or "end_turn", "stop"))
        if k == "message_stop":
            out = self._start()
            if self.include_usage:
                out += data_message({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                     "model": self.model, "choices": [], "usage": usage_out(self.usage)})
            return out + b"data: [DONE]\n\n"
        if k == "error":
            assert isinstance(ev, StreamError)
            return self.encode_error(TierwiseError(ev.message, kind=ev.error_type))
        if isinstance(ev, BlockStop):
            ordinal = self.tool_ordinal.get(ev.index)
            if ordinal is not None and ev.index not in self.tool_args_sent:
                # Anthropic streams a call without input as one empty piece; OpenAI clients
                # parse `arguments`, and "" is not JSON: send the empty object.
                self.tool_args_sent.add(ev.index)
                return self._chunk({"tool_calls": [{"index": ordinal, "function": {"arguments": "{}"}}]})
            return b""
        return b""

    def encode_error(self, err: TierwiseError) -> bytes:
        return data_message(error_object(err))
