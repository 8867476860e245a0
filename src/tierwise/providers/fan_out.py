"""Concurrent calls that stand or fall together (an Anthropic deployment's `n` choices: `Deployment._fan_out`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def all_or_none(calls: list[Awaitable[T]]) -> list[T]:
    """The results of `calls`, run at once; when one fails (or this is cancelled), the others are cancelled and
    awaited before the error is raised. `asyncio.gather` left them running: review38e found a request of n=3 whose
    first call failed settled its budget at $0 while the provider answered, and billed, the other two. Cancelled
    here, each is billed as a cut call (Deployment._bill_cut) before the request settles."""
    tasks = [asyncio.ensure_future(c) for c in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
