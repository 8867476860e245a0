"""Python code verifier: the answer's code compiles and, when tests are configured, passes them
in the sandbox. Model-written code is untrusted: it never runs in the gateway's process, and is
not even compiled there (compile() holds the GIL for its whole run, and 200 KB of redefinitions
take seconds: a thread would still stall the event loop)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess

from tierwise.canonical import Request, Response
from tierwise.sandbox import SandboxLimits, backend, require, run_python
from tierwise.sandbox.bwrap import interpreter
from tierwise.sandbox.capacity import SandboxBusy
from tierwise.sandbox.runner import confined_reader
from tierwise.verifiers import checker
from tierwise.verifiers.base import Verdict, VerifyContext
from tierwise.verifiers.text import python_code

log = logging.getLogger("tierwise.sandbox")

MAX_CODE_CHARS = 200_000
# Compiling executes nothing of the answer, so no folder or namespaces of a run; but the parser and compiler read the
# model's text in C, so the child is confined as a weak run is, but for a folder (runner.confined_reader).
_COMPILE = r"""
import sys
source = sys.stdin.buffer.read().decode("utf-8", "surrogatepass")
try:
    compile(source, "<answer>", "exec", dont_inherit=True)
except SyntaxError as e:
    print(f"syntax error at line {e.lineno}: {e.msg}")
except (ValueError, RecursionError, MemoryError, OverflowError) as e:
    print(f"does not compile: {type(e).__name__}")
"""
_COMPILE_LIMITS = SandboxLimits(cpu_s=10, memory_mb=1024)

# The harness reads a fresh token from stdin before the answer's code is imported and prints it
# only after the last test line ran: an answer that exits 0 early (`os._exit(0)`, `SystemExit`
# on import, an exit from inside a test) never printed it, so its run is not a pass. The token is
# a local of the function that runs the tests, and the module holds nothing that prints it: the
# function it does hold reads the token anew (stdin is at its end by then) and runs the tests
# again. (An answer that walks up the stack to that function's frame can still read the token:
# docs/security/sandbox.md.)
_TESTS_FILE = "tierwise_tests.py"
_HARNESS = f"""def _tierwise_run():
    import os, sys
    token = sys.stdin.readline().strip().encode()
    with open({_TESTS_FILE!r}, encoding="utf-8") as fh:
        tests = compile(fh.read(), {_TESTS_FILE!r}, "exec", dont_inherit=True)
    exec(tests, {{"__name__": "__main__", "__builtins__": __builtins__}})
    os.write(1, b"\\n" + token + b"\\n")
_tierwise_run()
"""


async def compile_error(code: str) -> str | None:
    """Why `code` does not compile, or None; compiled in a child interpreter, time-boxed.

    A compiler may take 1 GB and 10 s of CPU, so it takes a sandbox slot like a run: the cap on
    concurrent runs bounds compilers too (without it, every concurrent answer started one).
    Raises SandboxBusy when no slot is free in time."""
    async with backend.capacity.slot():
        return await _compile_in_child(code)


async def _compile_in_child(code: str) -> str | None:
    confine = await asyncio.to_thread(confined_reader, _COMPILE_LIMITS)
    try:
        proc = await asyncio.create_subprocess_exec(
            interpreter(), "-I", "-S", "-c", _COMPILE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env={}, cwd="/", start_new_session=True, preexec_fn=confine)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("sandbox: the compiler's process could not be started: %s", e)
        return "not compiled: the compiler's process could not be started (see the gateway's log)"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(code.encode("utf-8", "surrogatepass")), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "does not compile: the compiler ran out of time"
    except BaseException:
        proc.kill()  # cancelled: the compiler goes too
        raise
    if proc.returncode != 0:
        return "does not compile: the compiler ran out of time or memory"
    return out.decode("utf-8", "replace").strip() or None


ISOLATIONS = ("split", "shared")


class PythonCodeVerifier:
    """`tests` is Python run against the answer's public names (asserts, or any code that exits
    non-zero on failure); `run` runs the code itself when there are no tests.

    `isolation="split"` (default): the tests run in a checker process that never runs the answer's
    code, and call it in a second sandbox with plain data (tierwise.verifiers.checker).
    `"shared"`: the old way, tests after `from solution import *` in the answer's own process, for
    tests that pass objects across; an answer can forge that pass (docs/security/sandbox.md)."""

    def __init__(self, tests: str | None = None, run: bool = False, limits: SandboxLimits | None = None,
                 name: str = "python_code", isolation: str = "split") -> None:
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
        self.tests = tests
        self.run = run
        self.limits = limits or SandboxLimits()
        self.name = name
        self.isolation = isolation
        if tests is not None or run:
            require(f"verifier {name!r} (python_code with run or tests)")  # no OS sandbox: refuse to start

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        code = python_code(resp.text())
        if code is None:
            return Verdict(False, "no Python code found in the answer", 0.0, self.name)
        if len(code) > MAX_CODE_CHARS:
            return Verdict(False, f"code too long ({len(code)} characters)", 0.0, self.name)
        try:
            error = await compile_error(code)
        except SandboxBusy as e:
            return Verdict(False, f"sandbox busy: {e} (not compiled)", 0.0, self.name)
        if error:
            return Verdict(False, error, 0.0, self.name)
        if self.tests is None and not self.run:
            return Verdict(True, "code compiles", 1.0, self.name)
        if self.tests is not None and self.isolation == "split":
            checked = await checker.check(code, self.tests, self.limits)
            detail = {"layers": checked.layers, "returncode": checked.returncode, "isolation": "split",
                      "runs_as": checked.runs_as}
            if checked.passed:
                return Verdict(True, "tests passed", 1.0, self.name, detail)
            return Verdict(False, checked.reason if checked.busy else f"tests failed: {checked.reason}", 0.0,
                           self.name, detail)
        body = "import solution\n" if self.tests is None else "from solution import *\n\n" + self.tests
        token = secrets.token_hex(16)
        result = await run_python(_HARNESS, files={"solution.py": code, _TESTS_FILE: body}, stdin=token + "\n",
                                  limits=self.limits)
        finished = token in result.stdout
        result.stdout = result.stdout.replace(token, "")
        detail = {"layers": result.layers, "returncode": result.returncode, "runs_as": result.runs_as}
        if result.busy:
            return Verdict(False, result.summary(), 0.0, self.name, detail)
        what = "tests" if self.tests else "code"
        if result.ok and finished:
            return Verdict(True, "tests passed" if self.tests else "code ran", 1.0, self.name, detail)
        if result.ok:
            return Verdict(False, f"{what} did not run to the end: the process exited 0 before the last line",
                           0.0, self.name, detail)
        return Verdict(False, f"{what} failed: {result.summary()}", 0.0, self.name, detail)
