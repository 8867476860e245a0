"""The weak sandbox of round 5 (session 24), reviewed (bench/RESULTS.md "Review of sandbox round 5"): the gateway's
working folder and home hidden from a weak run, and runs that cannot be set up answering with a result."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude, weak_only  # noqa: F401 (weak_only: autouse fixture)
from tierwise.sandbox import SandboxLimits, identity, run_python, run_script
from tierwise.sandbox import bwrap as bwrap_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)


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
    assert "dotenv refused 2" in r.stdout and "own script READ" in r.stdout, r.stdout
    # the folder lists only what is shown again; under Landlock (session 25) it cannot be listed at all
    assert "['agents']" in r.stdout or "listing refused 13" in r.stdout, r.stdout


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


GATEWAY_UID = 61000
# A gateway that is not root, its interpreter installed in its home (pyenv, uv): its weak run of the model's code.
GATEWAY = """
import asyncio, sys
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, run_python
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
r = asyncio.run(run_python(sys.argv[1], limits=SandboxLimits(wall_s=60), audit_hook=False))
print("LAYERS", r.layers)
print(r.stdout, r.stderr)
"""

READ_KEY = attempt_prelude("READ") + """import os
attempt("ssh key", lambda: print(open(HOME + "/.ssh/id_ed25519").read()))
attempt("home", lambda: print(sorted(os.listdir(HOME))))
"""


def test_a_home_holding_the_interpreter_is_hidden_but_for_it() -> None:
    """A gateway that is not root runs its weak runs as its own user, so its 0600 files are theirs to read but for
    the mount namespace: its home was hidden only where it did not hold the interpreter. With the interpreter
    installed in the home (pyenv, uv), the weak run read the user's SSH key, OS layer alone (`ssh key READ`). The
    home is now covered and the interpreter's folder shown again in it."""
    if os.geteuid() != 0:
        unavailable("the test makes an unprivileged gateway: it needs root (id -u is not 0)")
    home = tempfile.mkdtemp(prefix="tw-review24a-home-")
    try:
        os.makedirs(os.path.join(home, ".ssh"))
        with open(os.path.join(home, ".ssh", "id_ed25519"), "w") as fh:
            fh.write("-----BEGIN OPENSSH PRIVATE KEY----- REVIEW24A")
        os.mkdir(os.path.join(home, "python"))
        for folder, _, names in os.walk(home):
            os.chown(folder, GATEWAY_UID, GATEWAY_UID)
            for name in names:
                os.chown(os.path.join(folder, name), GATEWAY_UID, GATEWAY_UID)
        os.chmod(home, 0o700)
        os.chmod(os.path.join(home, ".ssh", "id_ed25519"), 0o600)
        prefix = os.path.realpath(sys.base_prefix)
        python = os.path.join(home, "python", os.path.relpath(bwrap_mod.interpreter(), prefix))
        prepared = identity.switcher(identity.User(GATEWAY_UID, GATEWAY_UID), None)

        def gateway_user() -> None:  # the interpreter's installation in the home: bound there, in a mount ns of its own
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(identity.CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, identity.MS_REC | identity.MS_PRIVATE,
                                                                   None) != 0 or \
                    libc.mount(prefix.encode(), os.path.join(home, "python").encode(), None,
                               identity.MS_BIND | identity.MS_REC, None) != 0:
                raise OSError(ctypes.get_errno(), "the home's interpreter")
            identity.switch(prepared)

        src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
        path = os.pathsep.join([src, *(p for p in sys.path if p.endswith("site-packages"))])
        r = subprocess.run([python, "-c", GATEWAY, f"HOME = {home!r}\n" + READ_KEY], capture_output=True, text=True,
                           timeout=180, cwd=home, env={"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONPATH": path},
                           preexec_fn=gateway_user)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    if "readonly_host" not in r.stdout:
        unavailable("this kernel lets no unprivileged user make a user namespace: the weak run sees the host whole")
    assert "REVIEW24A" not in r.stdout and "ssh key refused 2" in r.stdout, r.stdout
    assert "['python']" in r.stdout or "home refused 13" in r.stdout, r.stdout  # (13: Landlock, session 25)


RAISE_OWN_LIMITS = """
import glob
for path in sorted(glob.glob("/sys/fs/cgroup/**/tierwise-*/pids.max", recursive=True)
                   + glob.glob("/sys/fs/cgroup/**/tierwise-*/memory.limit_in_bytes", recursive=True)):
    try:
        with open(path, "w") as fh:
            fh.write("max" if path.endswith("pids.max") else str(1 << 40))
        print("RAISED", path)
    except OSError as e:
        print("refused", e.errno, path)
"""


def test_a_run_that_may_rewrite_its_cgroup_does_not_claim_it(tmp_path: Any) -> None:
    """A gateway that is not root, in cgroups delegated to its user (v1 here: its folders chowned to it), where the
    kernel lets it make no user namespace: its weak run is the owner of the run's cgroup files and sees /sys
    writable, and raised its own `pids.max` to "max", OS layer alone, while the result claimed `cgroup_pids`. No
    mode of a file its own user owns can keep that user out (it may chmod it back), so such a run no longer claims
    the cgroup layers (it still joins them, for the kernel's accounting and the cleanup)."""
    from tests.security.test_weak_sandbox_own_user import GATEWAY as OWN_USER_GATEWAY

    if os.geteuid() != 0:
        unavailable("the test makes an unprivileged gateway: it needs root (id -u is not 0)")
    from tierwise.sandbox import cgroup

    places = [p for p in cgroup.places()[0] if not p.v2]
    if not places:
        unavailable("no cgroup v1 hierarchy here to delegate a folder of to a user")
    delegated = [os.path.join(p.parent, f"tw-review24a-{os.getpid()}") for p in places]
    for folder in delegated:
        os.makedirs(folder, exist_ok=True)
        for name in [".", *os.listdir(folder)]:
            os.chown(os.path.join(folder, name), GATEWAY_UID, GATEWAY_UID)
    user = identity.User(GATEWAY_UID, GATEWAY_UID)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    reach = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), os.path.realpath(src)]
    prepared = identity.switcher(user, identity.plan(reach, user))

    def gateway() -> None:
        for folder in delegated:
            with open(os.path.join(folder, "cgroup.procs"), "w") as fh:
                fh.write("0")
        identity.switch(prepared)

    try:
        r = subprocess.run([sys.executable, "-c", OWN_USER_GATEWAY, src, RAISE_OWN_LIMITS, "no-user-namespace"],
                           capture_output=True, text=True, timeout=180, cwd="/tmp", preexec_fn=gateway,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    finally:
        for folder in delegated:
            for _ in range(100):
                try:
                    os.rmdir(folder)
                    break
                except OSError:
                    import time
                    time.sleep(0.05)
    assert r.returncode == 0, r.stderr[-2000:]
    layers = r.stdout.split("LAYERS", 1)[1].split("\n", 1)[0]
    if "landlock" in layers:  # (session 25) the run opens nothing under /sys: it cannot raise them, and may claim them
        assert "RAISED" not in r.stdout and "cgroup_pids" in layers, r.stdout
    elif "RAISED" in r.stdout:
        assert "cgroup_" not in layers, r.stdout
    else:
        assert "refused" in r.stdout, r.stdout  # (the run's cgroups could not be made below the delegated folders)
