"""Canonical Request → OpenAI Chat Completions request body for an upstream (`encode_request`):
a same-format request is forwarded as sent (asking for stream usage), others are translated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tierwise.canonical import (
    Block,
    ImageBlock,
    OtherBlock,
    Request,
    TextBlock,
    ToolChoice,
    ToolResultBlock,
)
from tierwise.wire.openai_chat.documents import CARRIED, document_parts
from tierwise.wire.openai_chat.response import FORMAT, assistant_message


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
        elif isinstance(b, OtherBlock):
            t = b.raw.get("type")
            if t in ("input_audio", "file"):
                parts.append(b.raw)
            elif t in CARRIED:  # (wire13: dropped before, unread by the model)
                parts.extend(document_parts(b.raw))
    return parts


def _tool_result(b: ToolResultBlock) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text, and the parts an OpenAI tool message cannot carry (images, files: a user turn's)."""
    texts: list[str] = []
    more: list[dict[str, Any]] = []
    for c in b.content:
        if isinstance(c, TextBlock):
            texts.append(c.text)
        elif isinstance(c, ImageBlock):
            more.append(_image_url(c))
        elif isinstance(c, OtherBlock) and c.raw.get("type") in CARRIED:  # (wire13: dropped before)
            for p in document_parts(c.raw):
                if p["type"] == "text":
                    texts.append(p["text"])
                else:
                    more.append(p)
    text = "".join(texts)
    if more:
        text += "\n[image omitted]" if all(p["type"] == "image_url" for p in more) else "\n[attachment follows]"
    return ("Error: " + text) if b.is_error else text, more


def encode_messages(req: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": "\n\n".join(b.text for b in req.system)})
    for m in req.messages:
        if m.role == "user":
            results = [b for b in m.content if isinstance(b, ToolResultBlock)]
            rest = [b for b in m.content if not isinstance(b, ToolResultBlock)]
            for r in results:
                text, more = _tool_result(r)
                out.append({"role": "tool", "tool_call_id": r.tool_use_id, "content": text})
                if more:  # OpenAI tool messages can't carry images or files: pass them in a user turn
                    out.append({"role": "user", "content": more})
            if rest or not results:
                out.append({"role": "user", "content": _user_content(rest)})
        else:
            out.append(assistant_message(m.content))
    return out


def encode_tool_choice(tc: ToolChoice) -> Any:
    if tc.type == "tool":
        return {"type": "function", "function": {"name": tc.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[tc.type]


def encode_request(req: Request, upstream_model: str, cap_field: str = "max_tokens") -> dict[str, Any]:
    """`cap_field`: the field a translated request's output cap goes in (`max_tokens`, `max_completion_tokens` or
    `both`; config `max_tokens_field`): OpenAI's reasoning models refuse `max_tokens` (400), Ollama and TGI read
    only it. A same-format body keeps its client's own field."""
    if req.source_format == FORMAT and req.source_body is not None:
        body = dict(req.source_body)
        body["model"] = upstream_model
        n = req.max_tokens
        if n is not None:
            mt, mct = body.get("max_tokens"), body.get("max_completion_tokens")
            if mt is None and mct is None:
                # Set by the gateway: the output a budget reserved (budgets/), in the provider's `cap_field`: an
                # upstream that ignores `max_completion_tokens` (Ollama, TGI) is bounded too.
                if cap_field != "max_completion_tokens":
                    body["max_tokens"] = n
                if cap_field != "max_tokens":
                    body["max_completion_tokens"] = n
            elif mt != n and mct != n or mt is not None and mct is not None and mt != mct:
                # Lowered by the gateway (a model's max_output_tokens, its window: providers/window.py), or a
                # body carrying both fields: `req.max_tokens` (what a budget reserved) follows
                # `max_completion_tokens`, and an upstream that reads `max_tokens` (TGI) wrote the other one. Both
                # fields, where the client sent them, say at most what was reserved; its own field name is kept.
                for f, v in (("max_tokens", mt), ("max_completion_tokens", mct)):
                    if v is not None and not (isinstance(v, int) and v <= n):
                        body[f] = n
        if req.stream:
            so = body.get("stream_options")
            if not (isinstance(so, dict) and so.get("include_usage")):
                body["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
        return body
    body = {"model": upstream_model, "messages": encode_messages(req)}
    if req.max_tokens is not None:  # (what a budget reserved: in every field the upstream may read)
        if cap_field != "max_completion_tokens":
            body["max_tokens"] = req.max_tokens
        if cap_field != "max_tokens":
            body["max_completion_tokens"] = req.max_tokens
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
