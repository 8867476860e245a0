"""What of a client's request a learning route's judge may see under the privacy boundary (docs/privacy.md).

A request the boundary keeps from remote models (a `local_only` class anywhere in it, a region rule, a detector
that failed) is not shown to a remote judge, in part or whole. The judge reads the request's last user text (cut
at 32,000 characters), and the boundary scans only what it is sent: a value in a system prompt, an earlier turn or
past the cut left that text free to leave the machine. So the judge's call is preceded by the boundary's verdict
on the whole request as the client sent it, for the route it came by.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tierwise.canonical import Message, Request, TextBlock

log = logging.getLogger("tierwise")

RECHECK_CHARS = 64_000  # text of a served local answer's request kept for negative feedback's check (or none)


def has_boundary(services: Any) -> bool:
    return getattr(services, "privacy", None) is not None


def request_text(req: Request) -> str | None:
    """Every text of the request the boundary scans (system prompt, turns, tool calls and results, documents, image
    URLs, ...: privacy/request_scan.py), for a later check; None past `RECHECK_CHARS`. The turns' text blocks alone
    left out a tool result's value: a rating had the judge see the rest of a request the boundary kept local."""
    from tierwise.privacy.request_scan import iter_texts

    parts, size = [], 0
    for _, t in iter_texts(req):
        size += len(t)
        if size > RECHECK_CHARS:
            return None
        parts.append(t)
    return "\n".join(parts)


def as_request(model: str, text: str) -> Request:
    return Request(model=model, messages=[Message("user", [TextBlock(text)])])


async def judge_may_see(ctx: Any, req: Request, judge: Any) -> bool:
    """Whether the boundary would let `req` (the client's request) go to the judge: True without a `privacy:`
    section or for a local judge. A judge that is a route is taken as remote with no region tag (a class whose
    rule names regions keeps the request from it). Fails closed."""
    from tierwise.privacy.policy import decide

    b = getattr(ctx.services, "privacy", None)
    if b is None or getattr(judge, "locality", None) == "local":
        return True
    try:
        g = ctx.privacy if ctx.privacy is not None else b.guard(ctx)
        counts = await asyncio.to_thread(g.scan_request, req)
        verdict = decide(g.policies, b.table.classes_of(counts), b.table.class_entities,
                         frozenset(getattr(judge, "regions", None) or ()), counts)
    except Exception as e:  # a detector that fails: nothing is shown
        log.info("privacy: a judge call withheld (the check failed: %s)", type(e).__name__)
        return False
    return verdict.action not in ("refuse", "block")
