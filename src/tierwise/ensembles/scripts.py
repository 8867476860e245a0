"""Script agents: a program that reads JSON on stdin and writes `{success, data, error}` on stdout.

What may run: a trusted ensemble file (listed by the operator in `ensembles.trusted`) names
any command, inline argv included, and it runs on the host. Any other file may only name a
script file inside its own folder (relative path, no `..`, no symlink out, not an ensemble
file), with no arguments, and that script runs in the code sandbox (`_run_sandboxed`, the one
seam to it). An MCP client can write ensemble files but not scripts, so it can only choose
among scripts the operator put there.

The process runs in its own process group with a timeout; on timeout or cancellation the
whole group is killed and reaped, so a script that forks never outlives its run. A host script
gets a minimal environment (`host_environment`): the gateway's provider keys, gateway keys and
Redis passwords stay in the gateway unless the operator names them in `ensembles.script_env`; and the gateway
is made not dumpable first, so the script cannot read them in its /proc/<pid>/environ either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import orjson

from tierwise import sandbox
from tierwise.ensembles.confine import inside

_ABS_PATH = re.compile(r"^(/|~|\$|[A-Za-z]:[\\/]|\\\\)")

# What a host script gets from the gateway's environment without being configured: where programs, home,
# locale, time zone and temporary files are, and which Python environment tierwise runs in. Nothing that
# holds a credential; anything else only by name (or `PREFIX*`) in `ensembles.script_env`.
SCRIPT_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TERM",
              "PYTHONPATH", "PYTHONIOENCODING", "VIRTUAL_ENV")


def host_environment(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a trusted (host) script: `SCRIPT_ENV` and the operator's `extra` names, nothing else.
    A `PREFIX*` brings no variable that holds a secret (`secret_scrub.secret_variable`): `OPENAI*` for OPENAI_BASE_URL
    gave scripts OPENAI_API_KEY too (review38c); a key reaches a script only by its exact name."""
    from tierwise.secret_scrub import secret_variable

    names = [*SCRIPT_ENV, *extra]
    exact = {n for n in names if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    return {k: v for k, v in os.environ.items()
            if k in exact or (prefixes and k.startswith(prefixes) and not secret_variable(k, v))}


class ScriptFailed(Exception):
    pass


def script_refusal(script: str | list[str], base_dir: Path, *, trusted: bool) -> str | None:
    """Why an untrusted ensemble may not name this script (its shape or where it leads); None if it may."""
    if trusted:
        return None
    if not isinstance(script, str):
        return ("script: an inline command (a list) runs only from a trusted ensemble file; "
                "name a script file in the ensemble's folder")
    if not script.strip() or _ABS_PATH.match(script) or ".." in re.split(r"[\\/]", script):
        return f"script {script!r}: must be a file path relative to the ensemble's folder, without '..'"
    if script.endswith((".yaml", ".yml")):
        return f"script {script!r}: an ensemble file is not a script"
    cand = base_dir / script
    if (cand.exists() or cand.is_symlink()) and not inside(cand, base_dir):
        return f"script {script!r} resolves outside the ensemble's folder (refused)"
    return None


def script_problem(script: str | list[str], base_dir: Path, *, trusted: bool) -> str | None:
    """What stops this script agent from running: a refusal, or a script file that is not there."""
    refusal = script_refusal(script, base_dir, trusted=trusted)
    if refusal:
        return refusal
    if not trusted:
        assert isinstance(script, str)
        return None if (base_dir / script).is_file() else f"script {script!r} not found in the ensemble's folder"
    if isinstance(script, list) and not script:
        return "script: an empty command"
    first = script if isinstance(script, str) else script[0]
    if ("/" in first or first.endswith(".py")) and not (base_dir / first).exists() and not Path(first).exists():
        return f"script {first!r} not found next to the ensemble file"
    return None


def command_for(script: str | list[str], base_dir: Path, *, trusted: bool = True) -> list[str]:
    """`x.py` runs with this Python; relative paths resolve against the ensemble file's folder."""
    if not trusted:
        problem = script_problem(script, base_dir, trusted=False)
        if problem:
            raise ScriptFailed(problem)
        assert isinstance(script, str)
        path = os.path.realpath(base_dir / script)
        return [sys.executable, path] if path.endswith(".py") else [path]
    argv = [script] if isinstance(script, str) else list(script)
    first = argv[0]
    candidate = base_dir / first
    if not Path(first).is_absolute() and candidate.exists():
        first = str(candidate)
    if first.endswith(".py"):
        return [sys.executable, first, *argv[1:]]
    return [first, *argv[1:]]


async def run_script(argv: list[str], payload: dict[str, Any], timeout: float, *,
                     sandbox_folder: Path | None = None, env: dict[str, str] | None = None) -> Any:
    """Run a script agent and return its `data`; raise ScriptFailed or TimeoutError.

    With `sandbox_folder` (an untrusted ensemble's folder) it runs in the sandbox; otherwise on the host
    with `env` (default: `host_environment()`)."""
    stdin = orjson.dumps(payload, default=str)
    if sandbox_folder is None:
        returncode, out, err = await _run_host(argv, stdin, timeout, host_environment() if env is None else env)
    else:
        returncode, out, err = await _run_sandboxed(argv, sandbox_folder, stdin, timeout)
    if returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        raise ScriptFailed(f"exited with status {returncode}" + (f": {tail[0][:300]}" if tail else ""))
    try:
        reply = orjson.loads(out)
    except orjson.JSONDecodeError:
        raise ScriptFailed("did not print JSON on stdout (expected {success, data, error})") from None
    if not isinstance(reply, dict) or "success" not in reply:
        raise ScriptFailed("printed JSON without `success` (expected {success, data, error})")
    if not reply["success"]:
        raise ScriptFailed(str(reply.get("error") or "reported failure without an error message"))
    return reply.get("data")


async def _run_sandboxed(argv: list[str], folder: Path, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """THE seam to the code sandbox: an untrusted script, its folder read-only, JSON in and out.

    `tierwise.sandbox.run_script`: bubblewrap + seccomp, bounded CPU, memory, output and
    concurrency."""
    python = argv[0] == sys.executable
    limits = sandbox.SandboxLimits(wall_s=timeout, cpu_s=max(1, int(timeout) + 1))
    try:
        res = await sandbox.run_script(argv[-1], stdin, limits=limits, ro_binds=[os.path.realpath(folder)],
                                       python=python)
    except sandbox.SandboxUnavailable as e:
        raise ScriptFailed(f"untrusted script agents run in the sandbox: {e}; or list this ensemble file under "
                           "`ensembles.trusted` in tierwise.yaml") from None
    if res.timed_out:
        raise TimeoutError
    if res.busy or res.returncode is None:
        raise ScriptFailed(res.summary())
    return res.returncode, res.stdout.encode(), res.stderr.encode()


async def _run_host(argv: list[str], stdin: bytes, timeout: float, env: dict[str, str]) -> tuple[int, bytes, bytes]:
    # The script runs as the gateway's user: without this it read the gateway's whole environment (the keys `env`
    # leaves out) in /proc/<gateway>/environ, and its memory through /proc/<gateway>/mem.
    from tierwise.sandbox.weak import not_dumpable

    not_dumpable()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:  # not found, not executable, no shebang (ENOEXEC), ...
        raise ScriptFailed(f"cannot start {argv[0]!r}: {e.strerror or e}") from None
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(stdin)
    except BaseException:  # timeout or cancellation: kill the group, reap, re-raise
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    return proc.returncode or 0, out, err


def _kill(proc: asyncio.subprocess.Process) -> None:
    # Even when the script itself has exited, a child it left behind may hold stdout open.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
