"""The weak sandbox of round 5 (session 24), reviewed (bench/RESULTS.md "Review of sandbox round 5"): the gateway's
working folder and home hidden from a weak run, and runs that cannot be set up answering with a result."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, identity, run_python, run_script
from tierwise.sandbox import bwrap as bwrap_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)


@pytest.fixture(autouse=True)
def weak_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    yield
    sandbox.status.cache_clear()
    sandbox.configure()


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The folder the gateway was started in: a world-readable `.env` with a key, and the ensemble's script
    agents in `agents/` below it (the layout of docs/ensembles.md)."""
    folder = tempfile.mkdtemp(prefix="tw-review24a-project-")
    try:
        os.chmod(folder, 0o755)
        os.mkdir(os.path.join(folder, "agents"), 0o755)
        with open(os.path.join(folder, ".env"), "w") as fh:
            fh.write("OPENAI_API_KEY=sk-REVIEW24A-DOTENV")
        os.chmod(os.path.join(folder, ".env"), 0o644)
        monkeypatch.chdir(folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


READ_DOTENV = attempt_prelude("READ") + """import os, sys
attempt("dotenv", lambda: print(open(ENV).read()))
attempt("listing", lambda: print(sorted(os.listdir(os.path.dirname(ENV)))))
attempt("own script", lambda: print(len(open(sys.argv[0]).read()) > 0))
"""


async def test_a_script_agent_below_the_gateway_s_folder_does_not_uncover_it(project: str) -> None:
    """A script agent's folder below the gateway's working folder kept that folder from being hidden (a folder the
    run needs is not masked), so the weak run of the agent read the `.env` beside it, OS layer alone
    (`dotenv READ`). The folder is now hidden and only the agent's folder shown again inside it, as bubblewrap
    shows only the folders bound in."""
    script = os.path.join(project, "agents", "agent.py")
    with open(script, "w") as fh:
        fh.write(f"ENV = {project + '/.env'!r}\n" + READ_DOTENV)
    os.chmod(script, 0o644)
    r = await run_script(script, ro_binds=[os.path.dirname(script)], limits=LIMITS, audit_hook=False)
    if "readonly_host" not in r.layers:
        unavailable("the weak run sees the host read-only only where the gateway can make a mount namespace")
    assert r.ok, r.stderr
    assert "sk-REVIEW24A" not in r.stdout, r.stdout
    assert "dotenv refused 2" in r.stdout and "['agents']" in r.stdout and "own script READ" in r.stdout, r.stdout


async def test_a_weak_run_works_when_the_gateway_s_folder_is_gone(project: str) -> None:
    """A gateway whose working folder was removed under it (a release folder replaced) ran no weak run at all:
    computing the folders to hide raised FileNotFoundError from os.getcwd() in every run (the check said "could not
    check (FileNotFoundError)"). The folder is gone: nothing of it to hide."""
    shutil.rmtree(project)
    r = await run_python("print('ran')", limits=LIMITS)
    assert r.ok and r.stdout == "ran\n", (r.stdout, r.stderr)


async def test_a_run_whose_process_cannot_be_set_up_is_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between fork and exec the child makes its namespaces (a user namespace for a gateway that is not root: its
    user's count of them, `user.max_user_namespaces`, may be full), joins its cgroups, loads its filter. A failure
    there raised `SubprocessError: Exception occurred in preexec_fn` out of run_python (seen with a gateway of uid
    61000 whose user held its last user namespaces elsewhere). It is now a run not run, saying why it could not
    start, like a cgroup that cannot be made."""
    def refused(prepared: object) -> None:
        raise OSError(28, "sandbox user switch: a user namespace: No space left on device")

    assert (await run_python("print('ran')", limits=LIMITS)).ok  # the sandbox's own checks, before
    monkeypatch.setattr(identity, "switch", refused)
    r = await run_python("print('ran')", limits=LIMITS)
    assert r.returncode is None and "ran" not in r.stdout, (r.stdout, r.stderr)
    assert "could not be started" in r.stderr and "not run" in r.stderr, r.stderr
