"""OpenAI Chat Completions request from a client (`decode_request`) → canonical Request, with
validation: every refusal is a clear 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from tierwise.canonical import (
    Block,
    Message,
    OtherBlock,
    Request,
    ResponseFormat,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolUseBlock,
)
from tierwise.errors import InvalidRequest
from tierwise.wire import request_parts
from tierwise.wire._check import (
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_num,
    get_str,
    need,
    stop_list,
)
from tierwise.wire.openai_chat.response import FORMAT

_KNOWN = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "n", "logprobs", "top_logprobs",
    "reasoning_effort", "metadata", "user",
})
KNOWN_FIELDS = _KNOWN  # top-level fields the codec models (the rest is `extra`)


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
                out.append(request_parts.image_from_url(iu, None, f"{p}.image_url"))
            else:
                need(isinstance(iu, dict) and isinstance(iu.get("url"), str), f"{p}.image_url",
                     "must be an object with a string `url`")
                out.append(request_parts.image_from_url(iu["url"], iu.get("detail"), f"{p}.image_url.url"))
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
                tid = get_str(tc, "id", tp)
                if tid is None:  # an explicit id, even "", is what the tool message answers
                    tid = f"call_{i}_{j}"
                tool_ids.add(tid)
                blocks.append(ToolUseBlock(tid, name, request_parts.call_arguments(args)))
            messages.append(Message("assistant", blocks))
        elif role in ("tool", "function"):
            tid = get_str(m, "tool_call_id", p, required=role == "tool")
            if tid is None:
                tid = str(m.get("name") or "")
            need(tid in tool_ids, f"{p}.tool_call_id",
                 f"{tid!r} does not match any tool call of an earlier assistant message")
            request_parts.add_tool_result(messages, tid,
                                          _content_parts(m.get("content", ""), f"{p}.content", allow_images=False))
        else:
            raise InvalidRequest(f"{p}.role: unknown role {role!r} (expected system, developer, user, assistant, tool)")

    max_tokens = get_int(body, "max_completion_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = get_int(body, "max_tokens", minimum=1)
    tools: list[Tool] = []
    strict: dict[str, dict[str, Any]] | None = None  # strict tools' schemas (wire/strict_tools.py)
    for i, t in enumerate(get_list(body, "tools") or []):
        p = f"tools[{i}]"
        need(isinstance(t, dict), p, "must be an object")
        need(t.get("type", "function") == "function", f"{p}.type", "must be function")
        fn = get_dict(t, "function", p)
        need(fn is not None, f"{p}.function", "is required")
        assert fn is not None
        params = request_parts.function_parameters(fn, f"{p}.function")
        tools.append(Tool(get_str(fn, "name", f"{p}.function", required=True) or "",
                          get_str(fn, "description", f"{p}.function"), params))
        if get_bool(fn, "strict", f"{p}.function"):
            strict = strict or {}
            strict[tools[-1].name] = params
    raw_choice = body.get("tool_choice")
    choice: ToolChoice | None
    if isinstance(raw_choice, dict) and raw_choice.get("type") == "allowed_tools":
        choice, tools = _allowed_tools(raw_choice, tools)
    else:
        choice = _decode_tool_choice(raw_choice)
    tool_choice = request_parts.with_parallel(choice, get_bool(body, "parallel_tool_calls"))
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
        strict_tools=strict,
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
        return request_parts.named_tool_choice(tc)
    need(isinstance(tc, dict), "tool_choice", "must be a string or an object")
    need(tc.get("type", "function") == "function", "tool_choice.type", "must be function or allowed_tools")
    fn = tc.get("function")
    need(isinstance(fn, dict) and isinstance(fn.get("name"), str), "tool_choice.function.name", "is required")
    return ToolChoice("tool", fn["name"])


def _allowed_tools(tc: dict[str, Any], tools: list[Tool]) -> tuple[ToolChoice, list[Tool]]:
    """`{"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}`: the model may call only the
    listed tools. A same-format upstream gets the body as sent; a translated request offers only
    those of `tools` (no other format can allow a subset of the offered ones)."""
    at = get_dict(tc, "allowed_tools", "tool_choice")
    need(at is not None, "tool_choice.allowed_tools", "is required for type allowed_tools")
    assert at is not None
    mode = at.get("mode", "auto")
    need(mode in ("auto", "required"), "tool_choice.allowed_tools.mode", "must be auto or required")
    names: set[str] = set()
    for i, t in enumerate(get_list(at, "tools", "tool_choice.allowed_tools") or []):
        p = f"tool_choice.allowed_tools.tools[{i}]"
        fn = t.get("function") if isinstance(t, dict) else None
        need(isinstance(fn, dict) and isinstance(fn.get("name"), str), f"{p}.function.name", "is required")
        assert isinstance(fn, dict)
        names.add(fn["name"])  # a name not in `tools` allows nothing
    return ToolChoice("any" if mode == "required" else "auto"), [t for t in tools if t.name in names]


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
