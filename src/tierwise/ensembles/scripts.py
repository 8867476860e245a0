"""Script agents: a program that reads JSON on stdin and writes `{success, data, error}` on stdout.

The process runs in its own process group with a timeout; on timeout or cancellation the
whole group is killed and reaped, so a script that forks never outlives its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import orjson


class ScriptFailed(Exception):
    pass


def command_for(script: str | list[str], base_dir: Path) -> list[str]:
    """`x.py` runs with this Python; relative paths resolve against the ensemble file's folder."""
    argv = [script] if isinstance(script, str) else list(script)
    first = argv[0]
    candidate = base_dir / first
    if not Path(first).is_absolute() and candidate.exists():
        first = str(candidate)
    if first.endswith(".py"):
        return [sys.executable, first, *argv[1:]]
    return [first, *argv[1:]]


async def run_script(argv: list[str], payload: dict[str, Any], timeout: float) -> Any:
    """Run a script agent and return its `data`; raise ScriptFailed or TimeoutError."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:  # not found, not executable, no shebang (ENOEXEC), ...
        raise ScriptFailed(f"cannot start {argv[0]!r}: {e.strerror or e}") from None
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(orjson.dumps(payload, default=str))
    except BaseException:  # timeout or cancellation: kill the group, reap, re-raise
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        raise ScriptFailed(f"exited with status {proc.returncode}" + (f": {tail[0][:300]}" if tail else ""))
    try:
        reply = orjson.loads(out)
    except orjson.JSONDecodeError:
        raise ScriptFailed("did not print JSON on stdout (expected {success, data, error})") from None
    if not isinstance(reply, dict) or "success" not in reply:
        raise ScriptFailed("printed JSON without `success` (expected {success, data, error})")
    if not reply["success"]:
        raise ScriptFailed(str(reply.get("error") or "reported failure without an error message"))
    return reply.get("data")


def _kill(proc: asyncio.subprocess.Process) -> None:
    # Even when the script itself has exited, a child it left behind may hold stdout open.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
