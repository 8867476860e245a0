"""What an upstream's error means, whatever server sent it; and what a route does about it.

Statuses alone mislead: llama.cpp, vLLM, Ollama and OpenAI answer an over-long prompt with a 400,
the same status as a malformed request, and Anthropic with a 400 (or 413) too. So an upstream
error is classified by its body and message first, its status second:

| class            | examples (server: what it sends)                                        | moves on | breaker |
|------------------|--------------------------------------------------------------------------|----------|---------|
| context_overflow | llama.cpp 400 `exceed_context_size_error`; vLLM/OpenAI 400 "maximum context length is N tokens", code `context_length_exceeded`; Ollama "input length exceeds the context length"; Anthropic 400 "prompt is too long: N tokens > M maximum", 413 `request_too_large` | yes | no |
| rate_limit       | 429 (holds the deployment for its Retry-After instead, providers/breaker.py) | yes   | no      |
| auth             | 401, 402, 403 (the gateway's key or account at that upstream)            | yes      | yes     |
| not_found        | 404 (that upstream does not serve the model)                             | yes      | yes     |
| (request's)      | OpenRouter: 403 "your input was flagged" -> content_policy; 404 "No endpoints found that support tool use" and 402 "fewer max_tokens" -> unsupported_input (the client's request drew them) | | |
| overloaded       | 503, 529, Anthropic `overloaded_error` (not the gateway's own full pool: no breaker count) | yes | yes |
| timeout          | 408, 504, no answer in time                                              | yes      | yes     |
| unavailable      | other 5xx, refused connections, cut answers                              | yes      | yes     |
| blocked          | a WAF's or CDN's block page (Cloudflare "you have been blocked", Akamai "Access Denied"): the request's content or the gateway's address, not its key (providers/error_pages.py) | yes | no |
| content_policy   | OpenAI/Azure code `content_policy_violation` / `content_filter`          | no       | no      |
| malformed        | any other 4xx: the request itself is wrong and would be wrong anywhere   | no       | no      |
| unsupported_input| (gateway-made) images for a model configured `vision: false`: skipped without a call | yes | no |
| invalid_output   | (gateway-made) an answer that breaks the contract the request asked for (strict tools, wire/strict_tools.py; structured output, wire/strict_output.py) or the upstream's own format (Anthropic tool input that is not an object) | yes | no |

"Moves on": a fallback, cascade, specialist or learned route tries its next target. A content
policy refusal does not: sending the same text to another provider to get past a filter is not
the gateway's call. "Breaker": whether the failure counts against the deployment's health.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from tierwise.errors import ContextOverflow, TierwiseError, UnsupportedInput, UpstreamError
from tierwise.providers.error_pages import masked

ErrorClass = Literal["context_overflow", "rate_limit", "auth", "not_found", "overloaded", "timeout",
                     "unavailable", "content_policy", "malformed", "privacy_refused", "unsupported_input",
                     "invalid_output", "blocked"]

STAY = frozenset({"malformed", "content_policy"})  # the request's fault: no other target helps
# Not the deployment's health. privacy_refused: the privacy boundary kept the request from a remote
# target (tierwise.privacy.boundary); routes move on to their next target.
REQUEST_FAULT = frozenset({"malformed", "content_policy", "context_overflow", "privacy_refused",
                           "unsupported_input", "invalid_output", "blocked"})

# Phrases servers use for a prompt that does not fit (lower-cased). Specific on purpose: a loose
# "too many tokens" would also catch max_tokens validation errors, which are malformed requests.
_OVERFLOW_PHRASES = (
    "prompt is too long",  # Anthropic
    "exceed context limit",  # Anthropic: "input length and `max_tokens` exceed context limit: a + b > c"
    "exceeds the available context size",  # llama.cpp
    "maximum context length is",  # OpenAI, vLLM
    "context_length_exceeded",
    "context length exceeded",
    "input length exceeds the context length",  # Ollama
    "longer than the maximum model length",  # vLLM: "The decoder prompt (length N) is longer than ..."
    "exceeds the context window",
    "exceeds context length",  # LM Studio: "Input length N exceeds context length M"
)
_OVERFLOW_TYPES = frozenset({"exceed_context_size_error", "context_length_exceeded", "request_too_large"})
_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})

_X_API_KEY = re.compile(r"x-api-key", re.IGNORECASE)

_NUM = r"(\d[\d,]*)"
# (prompt tokens, window) from the messages servers write.
_LIMIT_PATTERNS = (
    re.compile(_NUM + r" tokens > " + _NUM + r" maximum"),  # Anthropic
    re.compile(r"request \(" + _NUM + r" tokens\) exceeds the available context size \(" + _NUM),  # llama.cpp
)
_WINDOW = (
    re.compile(r"maximum context length is " + _NUM),
    re.compile(r"maximum model length of " + _NUM),
    re.compile(r"context (?:size|length|window) (?:of |is )?\(?" + _NUM),
)
_PROMPT = (
    re.compile(r"resulted in " + _NUM + r" tokens"),
    re.compile(r"has " + _NUM + r" input tokens"),
    re.compile(r"\(" + _NUM + r" in the messages"),
    re.compile(r"prompt \(length " + _NUM + r"\)"),
    re.compile(r"input length " + _NUM),
)


@dataclass(frozen=True, slots=True)
class Classified:
    error_class: ErrorClass
    tokens: int | None = None  # prompt tokens the upstream counted, when it said
    limit: int | None = None  # its context window, when it said


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def _first(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for rx in patterns:
        m = rx.search(text)
        if m:
            return _int(m.group(1))
    return None


def overflow_numbers(message: str, err: dict[str, Any] | None = None) -> tuple[int | None, int | None]:
    """(prompt tokens, window) an overflow error states, from its fields or its message."""
    if err:
        n, ctx = err.get("n_prompt_tokens"), err.get("n_ctx")  # llama.cpp's fields
        if isinstance(n, int) and isinstance(ctx, int) and not isinstance(n, bool):
            return n, ctx
    for rx in _LIMIT_PATTERNS:
        m = rx.search(message)
        if m:
            return _int(m.group(1)), _int(m.group(2))
    return _first(_PROMPT, message), _first(_WINDOW, message)


def is_overflow_text(message: str) -> bool:
    low = message.lower()
    return any(p in low for p in _OVERFLOW_PHRASES)


def classify(status: int | None, err: dict[str, Any] | None, message: str) -> Classified:
    """Classify one upstream error: its HTTP status (None mid-stream), its error object, its message."""
    e = err or {}
    etype = str(e.get("type") or "").lower()
    code = str(e.get("code") or "").lower()
    if etype in _OVERFLOW_TYPES or code in _OVERFLOW_TYPES or status == 413 or is_overflow_text(message):
        # A 5xx that mentions a context is still a server failure unless the error says overflow.
        if status is None or status < 500 or etype in _OVERFLOW_TYPES or code in _OVERFLOW_TYPES:
            tokens, limit = overflow_numbers(message, e)
            return Classified("context_overflow", tokens, limit)
    if code in _POLICY_CODES or etype in _POLICY_CODES:
        return Classified("content_policy")
    if status is None:
        return Classified(_class_of_type(etype))
    if status == 429 or etype == "rate_limit_error":
        return Classified("rate_limit")
    if status in (401, 402, 403, 404):
        # A status that reads as the gateway's key or model, drawn by the client's own request (OpenRouter's
        # documented answers): not the config, so no breaker that every other client then meets, no "gateway's key".
        low = message.lower()
        meta = e.get("metadata")
        if status == 403 and ((isinstance(meta, dict) and "flagged_input" in meta) or " flagged" in low):
            return Classified("content_policy")  # "your input was flagged" by the host's moderation
        if (status == 404 and "no endpoints found that" in low) or (status == 402 and "fewer max_tokens" in low):
            # "...that support tool use / image input / can handle the requested parameters"; "requires more
            # credits, or fewer max_tokens": this request's features or size; another target may take it.
            return Classified("unsupported_input")
        return Classified("not_found" if status == 404 else "auth")
    if status in (503, 529) or etype == "overloaded_error":
        return Classified("overloaded")
    if status in (408, 504):
        return Classified("timeout")
    if 400 <= status < 500:
        return Classified("malformed")
    return Classified("unavailable")


def _class_of_type(etype: str) -> ErrorClass:
    """Mid-stream errors have no status: judge by the type the server named."""
    return {"rate_limit_error": "rate_limit", "overloaded_error": "overloaded", "invalid_request_error": "malformed",
            "authentication_error": "auth", "permission_error": "auth", "not_found_error": "not_found",
            "timeout_error": "timeout"}.get(etype, "unavailable")  # type: ignore[return-value]


def class_of(err: TierwiseError) -> ErrorClass:
    """The class of an error raised anywhere below a policy (gateway-made errors included)."""
    cls = getattr(err, "error_class", None)
    if cls:
        return cls  # type: ignore[no-any-return]
    status = getattr(err, "upstream_status", None)
    if status is not None:
        return classify(status, None, "").error_class
    if err.kind == "timeout_error":
        return "timeout"
    if err.kind == "overloaded_error" or err.status == 503:
        return "overloaded"
    if err.status == 400:
        return "malformed"
    return "unavailable"


# The gateway's own configuration is wrong for that upstream (its key refused, a model it does not serve): the same
# request fails the same way until the operator fixes it, open breaker or not.
CONFIG_FAULT = frozenset({"auth", "not_found"})


def config_fault(err: TierwiseError) -> str | None:
    """`auth` or `not_found` when `err` (or the failure that opened the breaker it reports) is a configuration fault,
    else None."""
    cls = getattr(err, "cause", None) or class_of(err)
    return cls if cls in CONFIG_FAULT else None


def moves_on(err: UpstreamError) -> bool:
    """Should a route try its next target after this error?"""
    return class_of(err) not in STAY


def counts_against_deployment(err: UpstreamError) -> bool:
    """Does this failure say something about the deployment's health (for its breaker)?

    Not a wait for the provider's pool that ran out (`timeouts.pool`, the 503 "calls in flight"): the pool is
    the gateway's, and whoever filled it (one party's slow calls) would otherwise open the breaker for every
    client, and with `share_breakers` on every replica, for the whole cooldown after the calls ended (review29b).
    A hung upstream still opens it: the calls that hold the pool fail on their own timeouts."""
    return class_of(err) not in REQUEST_FAULT and not getattr(err, "pool_full", False)


def upstream_error(provider: str, status: int, err: dict[str, Any] | None, message: str,
                   retry_after: float | None, *, blocked: bool = False) -> UpstreamError:
    """The gateway's error for an upstream's non-2xx answer, by what it means (`blocked`: a WAF's or CDN's block
    page answered it, providers/error_pages.py).

    The client-facing status and kind are the gateway's, not the upstream's: a 401 from an upstream
    is the gateway's key, not the client's (502); a 529 becomes 503 (a status every API has).
    """
    c = Classified("blocked") if blocked else classify(status, err, message)
    if c.error_class == "auth":
        # Said as the gateway's key, which it is (the client's key was accepted). Anthropic's own words, "invalid
        # x-api-key", made Claude Code tell its user "Invalid API key · Fix external API key": the client's.
        whose = "(the gateway's key for this provider, not the client's)"
        message = f"{_X_API_KEY.sub('API key', message)} {whose}" if message else whose
    text = f"provider {provider!r} answered HTTP {status}" + (f": {message}" if message else "")
    return _error_of_class(text, c, status, retry_after)


def body_error(err: Any) -> UpstreamError:
    """The error an upstream put in the body of a 2xx answer or in a chunk of its stream (OpenAI format), by
    what it means. OpenRouter answers 200 once a provider behind it has taken the request, and a failure
    after that comes as `{"error": {"code": 429, "message": ...}}` (or a choice with `finish_reason:
    "error"`), in the body or as a stream's chunk; proxies in the one-api family answer every error with 200.
    The `code`, when it is an HTTP status, classifies it."""
    e = err if isinstance(err, dict) else {}
    text = err if isinstance(err, str) else e.get("message")
    message = masked(str(text or "upstream error"))  # scrubbed, its internal addresses masked
    code = e.get("code", e.get("status"))
    status = code if type(code) is int and 400 <= code < 600 else 429 if code == "rate_limit_exceeded" else None
    return _error_of_class(f"upstream error: {message}", classify(status, e, message), status, None)


def _error_of_class(text: str, c: Classified, status: int | None, retry_after: float | None) -> UpstreamError:
    """The gateway's error for an upstream's (`status`: None when the upstream named none)."""
    cls = c.error_class
    if cls == "context_overflow":
        return ContextOverflow(text, tokens=c.tokens, limit=c.limit, upstream_status=status)
    if cls == "rate_limit":
        return UpstreamError(text, status=429, upstream_status=status, retryable=True, retry_after=retry_after,
                             kind="rate_limit_error", error_class=cls)
    if cls == "content_policy":
        return UpstreamError(text, status=400, upstream_status=status, retryable=False,
                             kind="content_policy_violation", error_class=cls)
    if cls == "malformed":
        return UpstreamError(text, status=400, upstream_status=status, retryable=False,
                             kind="invalid_request_error", error_class=cls)
    if cls == "unsupported_input":
        e = UnsupportedInput(text)
        e.upstream_status = status
        return e
    if cls in ("auth", "not_found", "blocked"):
        return UpstreamError(text, status=502, upstream_status=status, retryable=False, error_class=cls)
    if cls == "overloaded":
        return UpstreamError(text, status=503, upstream_status=status, retryable=True, retry_after=retry_after,
                             kind="overloaded_error", error_class=cls)
    if cls == "timeout":
        return UpstreamError(text, status=504, upstream_status=status, retryable=True, retry_after=retry_after,
                             kind="timeout_error", error_class=cls)
    return UpstreamError(text, status=502, upstream_status=status, retryable=status is None or status >= 500,
                         retry_after=retry_after, error_class=cls)

