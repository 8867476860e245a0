"""How the gateway reads a run's stdout and stderr: at most so many small reads a second per pipe.

Every write of a run to its pipe that finds the gateway waiting wakes the gateway's event loop: one read, one
callback, one step of the reading coroutine, ~10-30 us of the gateway's CPU for each, whatever the write holds. A run
writing a byte at a time (review34a) made the gateway do a read for nearly every byte: 4 such runs took 2.2-3.3 s of
the gateway's CPU in 8 s (up to 40% of a core, on the event loop every request shares; 0.01-0.03 s for 4 runs asleep;
0.29-0.41 s paced: bench/sandbox_review34a.py --only trickle), work
done at the gateway's priority that neither the runs' shared cpu cgroup nor their lower nice weighs, and within
`output_bytes` (no cap is reached). Here each pipe has a bucket of BURST small reads, refilled at RATE a second; a small
read that finds it empty stops reading the pipe (the transport leaves the selector) for 1/RATE s, while the run's
bytes gather in the pipe (64 KB; then its writes wait) and the next read takes them all. A run's few lines (fewer
than BURST reads) are read as they come; a flood's large reads are not counted (`drain_bytes` bounds their number).

A conversation (`open_python`: the split checker relays one JSON line at a time between two runs, thousands of calls
a check) is the gateway asking and the run answering: on stdout, a read that brings a whole line to a reader waiting
for it is not counted either (paced, a check of 2,000 calls took 19.7 s instead of ~1 s). A run trickling its answer, or
writing when nothing was asked, is paced as any other; each answer ends the gateway's wait (the next line is the
gateway's to ask for), so a run gets one free read per question.
"""

from __future__ import annotations

import asyncio
from asyncio import subprocess as aio_subprocess
from typing import Any

BURST = 64  # small reads a pipe gets at once: a run's lines, read as they come
RATE = 100.0  # ... and then a second (the gateway's wake-ups per pipe, ~2-3 ms of its CPU a second)
SMALL = 16384  # a read of at least this is not counted: drain_bytes / SMALL of them at most (1,024 for 16 MB)


class PacedProtocol(aio_subprocess.SubprocessStreamProtocol):
    """asyncio's protocol for a process's pipes, with each output pipe's small reads paced (module docstring)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop, conversation: bool = False) -> None:
        super().__init__(limit=limit, loop=loop)
        self._conversation = conversation
        self._clock = loop
        self._process: Any = None
        self._tokens = {1: float(BURST), 2: float(BURST)}
        self._since = {1: loop.time(), 2: loop.time()}
        self._resting: set[int] = set()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._process = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:  # type: ignore[override]
        # (asked for: a reader waits on stdout, and this read completes its line)
        asked = self._conversation and fd == 1 and b"\n" in data and getattr(self.stdout, "_waiter", None) is not None
        super().pipe_data_received(fd, data)
        if fd not in self._tokens or len(data) >= SMALL or asked:
            return
        now = self._clock.time()
        self._tokens[fd] = min(float(BURST), self._tokens[fd] + (now - self._since[fd]) * RATE) - 1.0
        self._since[fd] = now
        if self._tokens[fd] >= 1.0 or fd in self._resting:
            return
        pipe = self._pipe(fd)
        if pipe is None or pipe.is_closing():
            return
        pipe.pause_reading()  # until the bucket holds one read again
        self._resting.add(fd)
        self._clock.call_later((1.0 - self._tokens[fd]) / RATE, self._resume, fd)

    def _pipe(self, fd: int) -> Any:
        return None if self._process is None else self._process.get_pipe_transport(fd)

    def _resume(self, fd: int) -> None:
        self._resting.discard(fd)
        pipe = self._pipe(fd)
        reader = self.stdout if fd == 1 else self.stderr
        # Not where the reader paused it itself (its buffer past twice its limit): it resumes it once read.
        if pipe is not None and not pipe.is_closing() and not getattr(reader, "_paused", False):
            pipe.resume_reading()


async def create_subprocess_exec(*argv: str, limit: int, conversation: bool = False,
                                  **kwargs: Any) -> aio_subprocess.Process:
    """asyncio.create_subprocess_exec with the output pipes paced (module docstring); `conversation`: stdout answers
    the gateway line by line."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(lambda: PacedProtocol(limit, loop, conversation), *argv, **kwargs)
    return aio_subprocess.Process(transport, protocol, loop)
