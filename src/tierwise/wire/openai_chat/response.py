"""OpenAI Chat Completions whole bodies: the chat completion an upstream answers with
(`decode_response`), the one a client gets (`encode_response`), error bodies (`error_object`,
`encode_error`), and the API's vocabulary both directions and the streams share (`FORMAT`,
finish reasons, error types).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from tierwise.canonical import (
    Block,
    Choice,
    Response,
    StopReason,
    TextBlock,
    ThinkingBlock,
    TokenLogprob,
    ToolUseBlock,
    Usage,
    WireFormat,
)
from tierwise.errors import ContextOverflow, TierwiseError, UpstreamError
from tierwise.ids import new_id
from tierwise.providers.error_classes import body_error
from tierwise.secret_scrub import scrub
from tierwise.wire import model_name
from tierwise.wire._check import INT_MAX, token_count, usd_billed
from tierwise.wire.json_prefix import tool_input

FORMAT: WireFormat = "openai"

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
    "budget_exceeded": ("insufficient_quota", "insufficient_quota"),  # a spent budget: OpenAI's quota error
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
    "timeout_error": ("server_error", None),
}


def new_completion_id() -> str:
    return new_id("chatcmpl-")


# ============================================================================ upstream side: decode


def logprobs_in(lp: Any) -> list[TokenLogprob] | None:
    if not isinstance(lp, dict) or not isinstance(lp.get("content"), list):
        return None
    out = []
    for t in lp["content"]:
        if isinstance(t, dict):
            top = [(x.get("token", ""), float(x.get("logprob", 0.0))) for x in t.get("top_logprobs") or []
                   if isinstance(x, dict)]
            out.append(TokenLogprob(str(t.get("token", "")), float(t.get("logprob", 0.0)), top))
    return out


def usage_in(u: Any, timings: Any = None) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    cached = writes = 0
    det = u.get("prompt_tokens_details")
    prompt = token_count(u.get("prompt_tokens"))
    if isinstance(det, dict):
        cached = min(prompt, token_count(det.get("cached_tokens")))
        if "cache_write_tokens" in det:  # OpenRouter's, for an upstream billing cache writes (Anthropic: 1.25x input)
            writes = min(prompt - cached, token_count(det["cache_write_tokens"]))
    elif isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
        # llama.cpp builds without prompt_tokens_details say it in `timings.cache_n` only.
        cached = max(0, min(prompt, timings["cache_n"]))
    if not cached:  # DeepSeek reports its cache hits in a field of its own
        hit = u.get("prompt_cache_hit_tokens")
        cached = hit if type(hit) is int and 0 < hit <= prompt - writes else 0  # (past the writes: input -100,000, review31c)
    return Usage(input_tokens=prompt - cached - writes, output_tokens=_output_tokens(u, prompt),
                 cache_read_tokens=cached, cache_write_tokens=writes,
                 billed_usd=usd_billed(u) if "cost" in u else 0.0)


def _output_tokens(u: dict[str, Any], prompt: int) -> int:
    """The output tokens billed: `completion_tokens`, which OpenAI's include the hidden reasoning. Gemini's OpenAI
    layer (and proxies in front of it) left the reasoning out of it and put it in `total_tokens` and
    `completion_tokens_details.reasoning_tokens` only (completion 0, reasoning 60, total 81:
    router-for-me/CLIProxyAPI#5733); read alone, a $0.05 budget counted 10 tokens of answers that billed 2,010
    (session 36, costs8). So: a completion count below its own reasoning part left it out, and a total above
    prompt + completion holds output the completion count did not say (output priced, the dearer side)."""
    out = token_count(u.get("completion_tokens"))
    # (whole numbers only, no token_count call: this runs on every answer; a lying count is cut to the call's
    # max_tokens in usage_bounds, and to INT_MAX here for the encoders)
    det = u.get("completion_tokens_details")
    if det.__class__ is dict and (r := det.get("reasoning_tokens")).__class__ is int and r > out:
        out = min(out + r, INT_MAX)
    total = u.get("total_tokens")
    if total.__class__ is int and total - prompt > out:
        out = min(total - prompt, INT_MAX)
    return out


def content_chunks(content: list[Any]) -> list[tuple[str, str]]:
    """(kind, text) of each piece of a `content` sent as a list of chunks, `kind` "thinking" or "text": Mistral's
    reasoning models send thinking chunks (`{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}`) then
    text chunks, streamed and not (wire14: a streamed answer so reached the client as an empty 200). Pieces of other
    shapes carry nothing read here. At most one piece of each kind, in the order each kind first came (review37d: a
    piece each, 100,000 one-letter chunks in one upstream event of 2.7 MB were 100,000 client events, 11.6 MB, and
    alternating kinds 300,000 events, 33 MB, each a block of its own)."""
    kinds: dict[str, list[str]] = {}
    for p in content:
        if type(p) is not dict:
            continue
        if p.get("type") == "thinking":
            t = p.get("thinking")
            parts = [t] if type(t) is str else t if type(t) is list else ()
            text = "".join(x if type(x) is str else str(x["text"]) if type(x) is dict and type(x.get("text")) is str
                           else "" for x in parts)
            if text:
                kinds.setdefault("thinking", []).append(text)
        elif type(p.get("text")) is str and p["text"]:
            kinds.setdefault("text", []).append(p["text"])
    return [(k, "".join(v)) for k, v in kinds.items()]


def _message_blocks(msg: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    rc = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(rc, str) and rc:
        blocks.append(ThinkingBlock(rc))
    content = msg.get("content")
    if isinstance(content, str) and content:
        blocks.append(TextBlock(content))
    elif isinstance(content, list):
        for kind, text in content_chunks(content):
            if kind == "thinking" and blocks and isinstance(blocks[-1], ThinkingBlock):
                blocks[-1].thinking += text
            elif kind == "text" and blocks and isinstance(blocks[-1], TextBlock):
                blocks[-1].text += text
            else:
                blocks.append(ThinkingBlock(text) if kind == "thinking" else TextBlock(text))
    if isinstance(msg.get("refusal"), str) and msg["refusal"]:
        blocks.append(TextBlock(msg["refusal"]))
    for i, tc in enumerate(msg.get("tool_calls") or []):
        fn = tc.get("function") or {}
        blocks.append(ToolUseBlock(str(tc.get("id") or f"call_{i}"), str(fn.get("name") or ""),
                                   tool_input(fn.get("arguments"))))
    return blocks


def matched_stop(choice: dict[str, Any], stop: str) -> str | None:
    """The stop string a choice ended on, where the server names it: vLLM's `stop_reason` (a string;
    an int is a stop token id). Servers that say only `stop` (OpenAI itself, Ollama): none."""
    seq = choice.get("stop_reason")
    return seq if stop == "end_turn" and type(seq) is str and seq else None


def decode_response(body: Any, raw: bytes | None = None) -> Response:
    if isinstance(body, dict) and body.get("error"):
        # An error beside (or instead of) the answer, sent with 200 (OpenRouter, one-api proxies): the
        # openai SDK would hand its caller the half answer as a success. (`"error": null` is no error.)
        raise body_error(body["error"])
    try:
        choices = body["choices"]
        for c in choices:
            if c.get("finish_reason") == "error":  # OpenRouter: the provider behind it failed mid-answer
                raise body_error(c.get("error") or "the answer ended with finish_reason \"error\"")
        first = choices[0]
        msg = first.get("message") or {}
        blocks = _message_blocks(msg)
        stop = FINISH_TO_STOP.get(first.get("finish_reason") or "stop", "end_turn")
        if any(isinstance(b, ToolUseBlock) for b in blocks) and stop == "end_turn":
            stop = "tool_use"  # some local servers say "stop" after a tool call
        seq = matched_stop(first, stop)
        if seq is not None:
            stop = "stop_sequence"
        extra = []
        for c in choices[1:]:
            cb = _message_blocks(c.get("message") or {})
            extra.append(Choice(cb, FINISH_TO_STOP.get(c.get("finish_reason") or "stop", "end_turn"),
                                logprobs_in(c.get("logprobs"))))
        return Response(
            id=str(body.get("id") or new_completion_id()),
            model=str(body.get("model") or ""),
            content=blocks,
            stop_reason=stop,
            stop_sequence=seq,
            usage=usage_in(body.get("usage"), body.get("timings")),
            logprobs=logprobs_in(first.get("logprobs")),
            extra_choices=extra,
            raw=raw,
            raw_format=FORMAT,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError("upstream sent a chat completion this gateway cannot read", retryable=True) from None


# ============================================================================ client side: encode


def assistant_message(blocks: Sequence[Block]) -> dict[str, Any]:
    """An assistant turn's text and function calls (server tools ran upstream: not the client's calls),
    as a client's answer and as the history an upstream is sent."""
    text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    calls = [
        {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
        for b in blocks if isinstance(b, ToolUseBlock) and not b.server
    ]
    msg: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _message_out(blocks: list[Block]) -> dict[str, Any]:
    msg = assistant_message(blocks)
    thinking = "".join(b.thinking for b in blocks if isinstance(b, ThinkingBlock))
    if thinking:
        msg["reasoning_content"] = thinking
    return msg


def logprobs_out(lps: list[TokenLogprob] | None) -> dict[str, Any] | None:
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
        return model_name.body(resp.raw, model)  # the upstream's bytes, naming what the client asked for
    choices = [{"index": 0, "message": _message_out(resp.content),
                "finish_reason": STOP_TO_FINISH.get(resp.stop_reason or "end_turn", "stop"),
                "logprobs": logprobs_out(resp.logprobs)}]
    for i, c in enumerate(resp.extra_choices, start=1):
        choices.append({"index": i, "message": _message_out(c.content),
                        "finish_reason": STOP_TO_FINISH.get(c.stop_reason or "end_turn", "stop"),
                        "logprobs": logprobs_out(c.logprobs)})
    return orjson.dumps({
        "id": resp.id if resp.id.startswith("chatcmpl") else new_completion_id(),
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
