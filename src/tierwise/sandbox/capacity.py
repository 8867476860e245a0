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
        self._sems: dict[asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, asyncio.Lock]] = {}

    def _sem(self) -> tuple[asyncio.Semaphore, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        found = self._sems.get(loop)
        if found is None:
            self._sems = {lp: s for lp, s in self._sems.items() if not lp.is_closed()}
            found = self._sems[loop] = (asyncio.Semaphore(self.max_concurrent), asyncio.Lock())
        return found

    @contextlib.asynccontextmanager
    async def pair(self) -> AsyncIterator[None]:
        """Two slots for two runs that must run at the same time (a checker and the answer it
        calls). Taken one pair-taker at a time, so two pairs never each hold one slot and wait
        for the other; with `max_concurrent` 1 the pair shares the one slot."""
        if self.max_concurrent < 2:
            async with self.slot():
                yield
            return
        _, lock = self._sem()
        try:
            await asyncio.wait_for(lock.acquire(), self.wait_s)
        except TimeoutError:
            raise SandboxBusy(f"no sandbox slot free within {self.wait_s:g} s") from None
        try:
            first = self.slot()
            await first.__aenter__()
        except BaseException:
            lock.release()
            raise
        try:
            second = self.slot()
            await second.__aenter__()
        except BaseException:
            lock.release()
            await first.__aexit__(None, None, None)
            raise
        lock.release()
        try:
            yield
        finally:
            await second.__aexit__(None, None, None)
            await first.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        sem, _ = self._sem()
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
