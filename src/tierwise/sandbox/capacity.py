"""A cap on concurrent sandbox runs: a bounded queue, then "busy" instead of an unbounded pile-up.

Each run is a process tree with its own memory and CPU limits; the cap is what bounds their sum.
A run waits for a slot at most `wait_s`, behind at most `max_waiting` others; otherwise the
caller gets `SandboxBusy` at once (the verifier turns it into a failed check, so the cascade
escalates instead of the client seeing an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator


class SandboxBusy(Exception):
    """No sandbox slot was free within the wait."""


class Capacity:
    def __init__(self, max_concurrent: int | None = None, max_waiting: int = 64, wait_s: float = 30.0) -> None:
        self.max_concurrent = max_concurrent or os.cpu_count() or 1
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self.running = 0
        self.waiting = 0
        # One semaphore per event loop: tests (and `asyncio.run` callers) may use several loops.
        self._sems: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _sem(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._sems.get(loop)
        if sem is None:
            self._sems = {lp: s for lp, s in self._sems.items() if not lp.is_closed()}
            sem = self._sems[loop] = asyncio.Semaphore(self.max_concurrent)
        return sem

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        sem = self._sem()
        if sem.locked():
            if self.waiting >= self.max_waiting:
                raise SandboxBusy(f"{self.running} runs in progress and {self.waiting} waiting")
            self.waiting += 1
            try:
                await asyncio.wait_for(sem.acquire(), self.wait_s)
            except TimeoutError:
                raise SandboxBusy(f"no sandbox slot free within {self.wait_s:g} s") from None
            finally:
                self.waiting -= 1
        else:
            await sem.acquire()
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            sem.release()
