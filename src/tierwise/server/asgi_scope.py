"""ASGI's callable types, and what the gateway reads off a request's scope: its headers, made once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_HEADERS = "tierwise.headers"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers as a dict (lower-case names), made once per request."""
    h: dict[str, str] | None = scope.get(_HEADERS)
    if h is None:
        h = scope[_HEADERS] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return h


def header_values(scope: Scope, name: str) -> str:
    """Every line of one request header, joined as one list (RFC 9110 §5.3); "" when absent. For error
    paths: `request_headers` keeps only the last line of a repeated header."""
    key = name.encode("latin-1")
    return ", ".join(v.decode("latin-1") for k, v in scope["headers"] if k.lower() == key)
