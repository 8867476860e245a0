"""Anthropic Messages whole bodies: the message an upstream answers with (`decode_response`), the one a
client gets (`encode_response`), error bodies (`error_object`, `encode_error`), and the API's
vocabulary both directions and the streams share (`FORMAT`, stop reasons, error types).
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from tierwise.canonical import (
    Block,
    OtherBlock,
    RedactedThinkingBlock,
    Response,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
    WireFormat,
)
from tierwise.errors import ContextOverflow, TierwiseError, UpstreamError
from tierwise.ids import new_id
from tierwise.providers.error_classes import classify
from tierwise.providers.error_pages import masked
from tierwise.secret_scrub import scrub
from tierwise.wire import model_name
from tierwise.wire._check import token_count

FORMAT: WireFormat = "anthropic"

STOP_REASONS: frozenset[str] = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"})
# Stop reasons newer API versions added that older clients would not know.
_STOP_ALIASES: dict[str, StopReason] = {"model_context_window_exceeded": "max_tokens"}

ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "timeout_error",
})
_ERROR_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}

# OtherBlocks that came from OpenAI clients and mean nothing to Anthropic.
OPENAI_ONLY_BLOCKS = frozenset({"input_audio", "file", "image_url"})


def new_message_id() -> str:
    return new_id("msg_")


def text_out(b: TextBlock) -> dict[str, Any]:
    return {"type": "text", "text": b.text, **b.extra} if b.extra else {"type": "text", "text": b.text}


# ============================================================================ upstream side: decode


def usage_in(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    writes = token_count(u.get("cache_creation_input_tokens"))
    by_ttl = u.get("cache_creation")
    hour = min(writes, token_count(by_ttl.get("ephemeral_1h_input_tokens"))) if isinstance(by_ttl, dict) else 0
    tools = u.get("server_tool_use")
    searches = token_count(tools.get("web_search_requests")) if isinstance(tools, dict) else 0
    return Usage(
        input_tokens=token_count(u.get("input_tokens")),
        output_tokens=token_count(u.get("output_tokens")),
        cache_read_tokens=token_count(u.get("cache_read_input_tokens")),
        cache_write_tokens=writes,
        cache_write_1h_tokens=hour,  # (billed at twice the input price: counted as such, not as a 5-minute write)
        web_searches=searches,  # (billed per search: pricing.cost)
    )


def stop_reason_in(v: Any) -> StopReason | None:
    if v is None:
        return None
    if not isinstance(v, str):
        return "end_turn"
    if v in STOP_REASONS:
        return cast(StopReason, v)
    return _STOP_ALIASES.get(v, "end_turn")


def response_block_in(b: Any) -> Block:
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
        if inp is None:
            inp = {}
        elif type(inp) is not dict:  # relayed (or coerced to {}), the client got input it cannot use
            raise invalid_tool_input(f"{t} block")
        return ToolUseBlock(str(b.get("id") or ""), str(b.get("name") or ""), inp, server=t == "server_tool_use")
    if t == "thinking":
        return ThinkingBlock(str(b.get("thinking") or ""), b.get("signature") or None)
    if t == "redacted_thinking":
        return RedactedThinkingBlock(str(b.get("data") or ""))
    return OtherBlock(b)


def invalid_tool_input(where: str) -> UpstreamError:
    """Tool input that is not a JSON object (or, streamed, pieces that cannot begin one): off the Messages API's
    schema, which every Anthropic client relies on. The upstream's failure, class `invalid_output` as a strict
    tool's broken arguments are (wire/strict_tools.py): the route moves on to its next target, the breaker does
    not count it (the server is up; its model wrote what its format forbids)."""
    err = UpstreamError(f"upstream sent a malformed {where}: tool input that is not a JSON object",
                        retryable=False, error_class="invalid_output")
    err.answering = True  # a whole answer was made and is not read: billed as one (providers/deployment.py)
    return err


def upstream_error(err: Any, *, started: bool) -> UpstreamError:
    e = err if isinstance(err, dict) else {}
    given = e.get("type")
    message = masked(str((err if isinstance(err, str) else e.get("message")) or "upstream error"))
    where = "upstream error mid-stream" if started else "upstream error"
    c = classify(None, e, message)
    if c.error_class == "context_overflow" and not started:
        return ContextOverflow(f"{where}: {message}", tokens=c.tokens, limit=c.limit)
    etype = given if isinstance(given, str) and given in ERROR_TYPES else "api_error"
    status = {"rate_limit_error": 429, "invalid_request_error": 400, "overloaded_error": 503,
              "timeout_error": 504}.get(etype, 502)
    retryable = etype in ("api_error", "overloaded_error", "rate_limit_error", "timeout_error")
    return UpstreamError(f"{where}: {message}", status=status, retryable=retryable, kind=etype,
                         error_class=c.error_class)


def decode_response(body: Any, raw: bytes | None = None) -> Response:
    if isinstance(body, dict) and (body.get("type") == "error" or body.get("error")):
        # Sent with 200 by proxies (and an `error` beside a message): an error, never the client's answer.
        raise upstream_error(body.get("error"), started=False)
    try:
        content = body["content"]
        if not isinstance(content, list):
            raise TypeError("content is not a list")
        return Response(
            id=str(body.get("id") or new_message_id()),
            model=str(body.get("model") or ""),
            content=[response_block_in(b) for b in content],
            stop_reason=stop_reason_in(body.get("stop_reason")) or "end_turn",
            stop_sequence=body.get("stop_sequence") if isinstance(body.get("stop_sequence"), str) else None,
            usage=usage_in(body.get("usage")),
            raw=raw,
            raw_format=FORMAT,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError("upstream sent a message this gateway cannot read", retryable=True) from None


# ============================================================================ client side: encode


def response_block_out(b: Block) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return text_out(b)
    if isinstance(b, ToolUseBlock):
        return {"type": "server_tool_use" if b.server else "tool_use", "id": b.id, "name": b.name,
                "input": b.input}
    if isinstance(b, ThinkingBlock):
        return {"type": "thinking", "thinking": b.thinking, "signature": b.signature or ""}
    if isinstance(b, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": b.data}
    if isinstance(b, OtherBlock) and b.raw.get("type") not in OPENAI_ONLY_BLOCKS:
        return b.raw
    return None  # images or tool results cannot appear in an assistant answer


def usage_out(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens, "cache_read_input_tokens": u.cache_read_tokens}


def stop_reason_out(s: StopReason | None) -> str:
    return s if s in STOP_REASONS else "end_turn"  # "error" and None have no Anthropic spelling


def encode_response(resp: Response, model: str) -> bytes:
    if resp.raw is not None and resp.raw_format == FORMAT:
        return model_name.body(resp.raw, model)  # the upstream's bytes, naming what the client asked for
    return orjson.dumps({
        "id": resp.id if resp.id.startswith("msg_") else new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [x for x in (response_block_out(b) for b in resp.content) if x is not None],
        "stop_reason": stop_reason_out(resp.stop_reason),
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
    error: dict[str, Any] = {"type": error_type(err), "message": scrub(err.message)}
    if err.details:
        error["details"] = err.details
    return {"type": "error", "error": error}


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
