"""Configs and calls the cache tests share."""

from __future__ import annotations

from typing import Any

from tests.harness import two_tier_config

Q = [{"role": "user", "content": "What is the capital of France?"}]


def cached_config(openai_url: str, anthropic_url: str, *, cache: dict[str, Any] | None = None,
                  route_cache: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """`main` leads to the frontier model (Anthropic double), `loc` to the local one (OpenAI double)."""
    rc = route_cache or {}
    c = {"enabled": True, "routes": {"main": dict(rc), "loc": dict(rc)}}
    c.update(cache or {})
    return two_tier_config(openai_url, anthropic_url, routes={"main": ["frontier"], "loc": ["local"]},
                           cache=c, **extra)


def oai_call(client: Any, **kw: Any) -> tuple[Any, str]:
    kw.setdefault("model", "loc")
    kw.setdefault("messages", Q)
    kw.setdefault("temperature", 0)
    raw = client.chat.completions.with_raw_response.create(**kw)
    return raw.parse(), raw.headers.get("x-tierwise-cache", "")


def ant_call(client: Any, **kw: Any) -> tuple[Any, str]:
    kw.setdefault("model", "main")
    kw.setdefault("messages", Q)
    kw.setdefault("max_tokens", 50)
    kw.setdefault("extra_body", {"temperature": 0})  # this SDK version has no temperature argument
    raw = client.messages.with_raw_response.create(**kw)
    return raw.parse(), raw.headers.get("x-tierwise-cache", "")
