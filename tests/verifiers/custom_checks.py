"""Callables for the `callable` verifier tests (imported by name, as config would)."""

from __future__ import annotations

from typing import Any

from tierwise.verifiers.base import Verdict


def has_ok(req: Any, resp: Any, ctx: Any, word: str = "ok") -> bool:
    return word in resp.text()


async def async_pair(req: Any, resp: Any, ctx: Any) -> tuple[bool, str]:
    return len(resp.text()) < 10, "length checked"


def full_verdict(req: Any, resp: Any, ctx: Any) -> Verdict:
    return Verdict(True, "custom says fine", 0.9)


def explodes(req: Any, resp: Any, ctx: Any) -> bool:
    raise RuntimeError("secret-token-123 leaked into a message")


def returns_junk(req: Any, resp: Any, ctx: Any) -> str:
    return "yes"
