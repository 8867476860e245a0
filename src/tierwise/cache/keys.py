"""The exact-cache key: a digest over everything in a request that can change its answer.

Two requests share an entry only when they agree on the key's scope (tenant), the route, the
format the client speaks and whether it streams, the model name, the system prompt, every
message of the history, tools, tool_choice, response_format, every sampling and output
parameter, the wire fields tierwise does not model (`extra`: seed, penalties, stream_options...)
and the headers that can steer routing or the upstream (anthropic-*, x-tierwise-*, the Claude
Code sub-agent header, and a route's `vary_headers`). Client metadata and `user` are left out:
they do not change an answer. What is hashed is the client's decoded body when the request
still has it (the canonical request is made from it), else the canonical fields; either way
orjson with sorted keys, so equal requests give equal bytes whatever order the client wrote
its JSON in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tierwise.canonical import Request

KEY_VERSION = 2
_BLAKE2B_20 = hashlib.blake2b(digest_size=20)  # never updated: copied per key
_UNKEYED = ("metadata", "user")  # client bookkeeping in a body: never changes the answer
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_HEADER_PREFIXES = ("anthropic-", "x-tierwise-")
_SUBAGENT = ("x-claude-code-agent-id", "x-openai-subagent")  # Claude Code's and Codex's (rules' `subagent`)
_MAY_STEER = tuple("\n" + p for p in (*_HEADER_PREFIXES, *_SUBAGENT))  # in the header names joined by "\n"


def _fallback(v: Any) -> Any:
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return repr(v)


def steering_headers(req: Request, vary: list[str]) -> list[tuple[str, str]]:
    headers = req.headers
    if not vary:  # most requests have no header that may steer: four substring searches, no call per header
        names = "\n" + "\n".join(headers)
        if (_MAY_STEER[0] not in names and _MAY_STEER[1] not in names and _MAY_STEER[2] not in names
                and _MAY_STEER[3] not in names):
            return []
    out = []
    for k in headers:
        if k.startswith(_HEADER_PREFIXES) or k in _SUBAGENT:
            out.append((k, headers[k]))
    for h in vary:
        v = headers.get(h.lower())
        if v is not None:
            out.append((h.lower(), v))
    if len(out) > 1:
        out.sort()
    return out


def request_fields(req: Request) -> list[Any]:
    """The canonical fields that decide the answer (not the key's scope, route or format)."""
    return [
        req.model, req.system, req.messages, req.tools, req.tool_choice, req.response_format,
        req.max_tokens, req.temperature, req.top_p, req.top_k, req.stop, req.n, req.logprobs,
        req.top_logprobs, req.thinking, req.reasoning_effort, req.extra,
    ]


def exact_key(req: Request, *, tenant: str, route: str, client_format: str, vary: list[str] | None = None) -> str:
    body = req.source_body
    if body is not None and req.source_format == client_format:
        # The client's decoded body, which the canonical fields were made from (so it holds all of
        # them, and the fields they have no slot for), less what does not change an answer. Cheaper
        # than serialising the canonical request; two bodies that differ only in how they say the
        # same thing (a string or a list of one text part) get different keys: a miss, never a wrong hit.
        if "metadata" in body or "user" in body:
            body = {k: v for k, v in body.items() if k not in _UNKEYED}
        payload = orjson.dumps(  # (decoded JSON: nothing orjson cannot write, every key a string)
            [KEY_VERSION, tenant, route, client_format, bool(req.stream), "body", body,
             steering_headers(req, vary or [])], default=_fallback, option=orjson.OPT_SORT_KEYS)
    else:
        payload = orjson.dumps(
            [KEY_VERSION, tenant, route, client_format, bool(req.stream), "canonical", request_fields(req),
             steering_headers(req, vary or [])], default=_fallback, option=_OPTS)
    h = _BLAKE2B_20.copy()  # (cheaper than making one with its parameters)
    h.update(payload)
    return h.hexdigest()


def context_key(req: Request, *, tenant: str, route: str, client_format: str, vary: list[str] | None = None) -> str:
    """The semantic tier's scope: everything in the exact key except the last user question's text.

    A semantic hit may only reuse an answer whose request agrees on all of this: same tenant,
    route, format and stream flag, same earlier turns, tools, settings and steering headers.
    """
    msgs = list(req.messages)
    if msgs and msgs[-1].role == "user":
        msgs = msgs[:-1]
    fields = request_fields(req)
    fields[2] = msgs
    payload = orjson.dumps(
        [KEY_VERSION, "semantic", tenant, route, client_format, bool(req.stream), fields,
         steering_headers(req, vary or [])],
        default=_fallback, option=_OPTS,
    )
    return hashlib.blake2b(payload, digest_size=20).hexdigest()
