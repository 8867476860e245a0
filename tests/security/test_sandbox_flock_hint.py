"""A threaded run that calls `flock` gets ENOSYS (session 35, tierwise.sandbox.seccomp_filter); its traceback alone
reads like a broken filesystem. The run's summary — the reason a code verifier gives, what a user or agent sees —
carries a one-line hint: the sandbox has no flock with threads, and what to use instead."""

from __future__ import annotations

from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, run_python
from tierwise.sandbox.limits import FLOCK_HINT
from tierwise.verifiers import VerifyContext
from tierwise.verifiers.code import PythonCodeVerifier

from ..verifiers.helpers import req, resp

FLOCK = "import fcntl\nfcntl.flock(open('lockfile', 'w'), fcntl.LOCK_EX)\nprint('locked')\n"
THREADS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True)


async def test_a_threaded_runs_flock_failure_says_what_to_use_instead(mode: str) -> None:  # noqa: F811
    r = await run_python(FLOCK, limits=THREADS)
    assert not r.ok and "[Errno 38] Function not implemented" in r.stderr, r.stderr
    line = r.summary()
    assert line.endswith(FLOCK_HINT) and "SoftFileLock" in line and "threading.Lock" in line, line
    assert "\n" not in line and "[Errno 38]" in line, line  # the error itself is still shown, on one line


async def test_the_code_verifiers_reason_carries_the_hint(mode: str) -> None:  # noqa: F811
    v = PythonCodeVerifier(run=True, limits=THREADS)
    verdict = await v(req(), resp(f"```python\n{FLOCK}```"), VerifyContext())
    assert not verdict.passed and FLOCK_HINT in verdict.reason, verdict.reason


async def test_other_failures_of_a_threaded_run_get_no_hint(mode: str) -> None:  # noqa: F811
    r = await run_python("raise SystemExit('plain failure')", limits=THREADS)
    assert not r.ok and r.summary() == "plain failure", r.summary()


async def test_a_one_task_run_is_granted_flock_and_needs_no_hint(mode: str) -> None:  # noqa: F811
    r = await run_python(FLOCK, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256))
    assert r.ok and r.stdout.strip() == "locked", r.summary()


async def test_the_split_checkers_reason_carries_the_hint(mode: str) -> None:  # noqa: F811
    # isolation "split" (the default with tests): the answer's OSError comes back to the tests' process
    code = "import fcntl\ndef f():\n    fcntl.flock(open('lockfile', 'w'), fcntl.LOCK_EX)\n    return 1\n"
    v = PythonCodeVerifier(tests="assert f() == 1", limits=THREADS)
    verdict = await v(req(), resp(f"```python\n{code}```"), VerifyContext())
    assert not verdict.passed and "[Errno 38]" in verdict.reason and FLOCK_HINT in verdict.reason, verdict.reason
