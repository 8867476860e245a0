"""Running a verifier's CPU work off the event loop, with a time box.

A verifier reads text a model wrote, and a model's output is attacker-controlled (prompt
injection, or a hostile upstream): checking it must neither stall the gateway nor hang a
request. The built-in checks are linear in their input; on top of that their synchronous
cores run here, in a small pool of worker threads, so other requests keep being served while
a large answer is checked, and a check that takes longer than `CHECK_TIMEOUT_S` becomes a
failed verdict (the cascade escalates) instead of a stuck request. Regular expressions a user
or a client supplies use the `regex` module, which releases the GIL while matching and stops
at its own timeout (see `patterns.py`, `json_check.py`).

A thread cannot be stopped, so a timed-out check keeps its worker until it ends; the pool's
size bounds how much CPU such checks can take at once (later checks queue, and their wait
counts against their own time box).

Cost: one thread hand-off per check (tens of microseconds), only on routes that verify.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from tierwise.verifiers.base import Verdict

CHECK_TIMEOUT_S = 10.0
REGEX_TIMEOUT_S = 1.0  # one match of a user- or client-supplied pattern
WORKERS = 4

_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="tierwise-verify")

T = TypeVar("T")


async def off_loop(fn: Callable[..., Verdict], *args: object, name: str,
                   timeout: float = CHECK_TIMEOUT_S) -> Verdict:
    """`fn(*args)` in a worker thread; a failed verdict when it does not finish within `timeout`."""
    fut = asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
    try:
        return await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        return Verdict(False, f"check did not finish within {timeout:g}s", None, name, {"error": "timeout"})
