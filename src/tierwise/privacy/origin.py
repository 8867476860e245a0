"""The client's request behind a remote call made for it: a call that carries only part of it, or what a model made
of it (an LLM-judge verifier's prompt, an ensemble agent's input, a judge's or a shadow run's request), leaves only
where the client's whole request may go.

The guard scans what each call sends. A cascade's judge is sent the last user text and the local answer; an
ensemble's agents start from the last user text; a `local_only` value in the system prompt, an earlier turn or a
tool result is in none of those calls, and the rest of the request left (review31b, session 31). So the guard of a
client's request keeps that request (`Guard.origin`, set by `Gateway.context`), and the guards made inside its task
(`Guard.parent`) find it: a remote call that is not the request itself is refused when the boundary would refuse or
block the request for that destination. Fails closed: a detector failure on the request refuses the call.
"""

from __future__ import annotations

from typing import Any

from tierwise.canonical import Request
from tierwise.privacy.policy import decide
from tierwise.privacy.text_cleaning import DetectionFailed


def origin_of(guard: Any) -> Request | None:
    """The client's request whose task this guard's calls are made in (None outside a client's request)."""
    while guard is not None:
        if guard.origin is not None:
            return guard.origin  # type: ignore[no-any-return]
        guard = guard.parent
    return None


def root_of(guard: Any) -> Any:
    """The guard of the client's request itself: the last `parent` up the chain (it holds the conversation)."""
    while guard.parent is not None:
        guard = guard.parent
    return guard


def kept_from(guard: Any, req: Request, regions: frozenset[str]) -> str | None:
    """Why a remote call sending `req` to a destination in `regions` may not leave although `req` itself may: the
    client's request holds data the boundary keeps from it (None: it may go, or `req` is the client's request)."""
    origin = origin_of(guard)
    if origin is None or origin is req:
        return None
    try:
        counts = guard.scan_request(origin)
    except DetectionFailed:
        return "the privacy detector failed on the client's request (fails closed)"
    b = guard.b
    verdict = decide(guard.policies, b.table.classes_of(counts), b.table.class_entities, regions, counts)
    if verdict.action in ("refuse", "block"):
        return f"the client's request is kept from it: {verdict.reason}"
    return None
