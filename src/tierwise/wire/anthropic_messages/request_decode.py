"""Anthropic Messages request from a client (`decode_request`) → canonical Request.

Most of the work is validation: every refusal is a clear 400 naming the field (`messages[2].content[0].type`).
"""

from __future__ import annotations

from typing import Any, cast

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
from tierwise.nested_parts import MAX_DEPTH, MAX_PARTS, nested_parts
from tierwise.wire._check import (
    INT_MAX,
    MAX_STOP,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_num,
    get_str,
    image_url,
    need,
)
from tierwise.wire.anthropic_messages.response import FORMAT

_KNOWN = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "tools", "tool_choice", "metadata", "thinking",
})
KNOWN_FIELDS = _KNOWN  # top-level fields the codec models (the rest is `extra`)

# Block types tierwise does not model but must carry for same-format clients (documents,
# server tool results, MCP blocks). Anything else unknown is a client error.
_OPAQUE_BLOCKS = frozenset({"document", "search_result", "container_upload", "mcp_tool_use", "mcp_tool_result"})


def _is_opaque_type(t: Any) -> bool:
    return isinstance(t, str) and (t in _OPAQUE_BLOCKS or t.endswith("_tool_result"))


def _opaque_block(b: dict[str, Any], path: str) -> OtherBlock:
    """A block carried as sent, except what names a file in the upstream account: the account is the operator's,
    not the client's (Files API ids in a document's `source` or a `container_upload`), as OpenAI `file_id`s are
    refused."""
    parts, whole = nested_parts(b)
    need(whole, path, f"nests more than {MAX_PARTS} parts or deeper than {MAX_DEPTH} levels")
    need("file_id" not in b, path, _FILE_IDS)
    for i, part in enumerate(parts):  # (costs10: a document inside a web fetch's result named a file too)
        src = part.get("source")
        need(not (isinstance(src, dict) and (src.get("type") == "file" or "file_id" in src)),
             f"{path}.source" if i == 0 else f"{path} (its nested {str(part.get('type'))[:40]!r}).source", _FILE_IDS)
    return OtherBlock(b)


_FILE_IDS = "file ids name files in the gateway's upstream account; send the document inline (base64 or text) or by URL"


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
            out.append(_opaque_block(c, p))  # carried for same-format upstreams; other formats skip it
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
            out.append(_opaque_block(b, p))
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


def _contract_tools(raw: list[Any], tools: list[Tool], choice: ToolChoice | None) -> dict[str, dict[str, Any]] | None:
    """{name: input schema} of the tools whose input the answer must honour (wire/strict_tools.py): those marked
    `"strict": true` (Anthropic constrains their input to the schema), and the one `tool_choice` forces, Anthropic
    clients' way to ask for structured output (the instructor and LangChain `with_structured_output` helpers
    validate its input with the caller's model). None without any."""
    forced = choice.name if choice is not None and choice.type == "tool" else None
    out = {t.name: t.input_schema for t, r in zip(tools, raw, strict=False) if t.raw is None and (
        t.name == forced or (isinstance(r, dict) and r.get("strict") is True))}
    return out or None


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
    if len(v) > MAX_STOP:  # (any number before wire10)
        need(False, "stop_sequences", f"at most {MAX_STOP} strings")
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
    raw_tools = get_list(body, "tools") or []
    tools = _decode_tools(raw_tools)
    tool_choice = _decode_tool_choice(body.get("tool_choice"))
    # With interleaved thinking the budget spans the whole turn and may exceed max_tokens (as
    # Anthropic allows; Qwen Code sends budget == max_tokens). The header is already filtered by
    # server.forwarding, so a flag the upstream will not get does not lift the check.
    if (thinking is not None and thinking.get("type") == "enabled" and max_tokens is not None
            and "interleaved-thinking" not in headers.get("anthropic-beta", "")):
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
        tools=tools,
        tool_choice=tool_choice,
        strict_tools=_contract_tools(raw_tools, tools, tool_choice) if tools else None,
        response_format=_decode_output_format(body),
        thinking=thinking,
        metadata=metadata,
        user=user if isinstance(user, str) else None,
        extra={k: v for k, v in body.items() if k not in _KNOWN},
        source_format=FORMAT,
        source_body=body if forward else None,
        headers=headers,
    )
