"""A gateway that is not root runs the weak sandbox's code as its own user (no user to switch to): what that code
reaches of the gateway process itself, with the OS layer alone (session 24, bench/RESULTS.md "Sandbox attack
round 5"). The gateway here is a child of the test switched to an unprivileged uid (as root, the test stages the
interpreter's folder for it, as the sandbox does for its own user)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tierwise.sandbox import identity

SECRET = "sk-ROUND5-GATEWAY-ENV-SECRET"
GATEWAY_UID = 61000

# The gateway: configures the weak sandbox as `serve` does, then runs the model's code (hook off).
GATEWAY = """
import asyncio, os, sys
sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_python
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
if sys.argv[3] == "no-user-namespace":  # as on a kernel that lets no unprivileged user make one
    backend.weak_read_only_host = lambda: False
    # and as where /dev/shm is a small tmpfs (no memory cgroup for a gateway that is not root: with a big one the weak
    # sandbox is refused, tests/security/test_sandbox_round8.py); here the temporary folder stands for it
    import tempfile
    from tierwise.sandbox import weak
    weak.folder_root = tempfile.gettempdir
code = f"GATEWAY = {os.getpid()}\\n" + sys.argv[2]
r = asyncio.run(run_python(code, limits=SandboxLimits(wall_s=60), audit_hook=False))
print("RUNS_AS", r.runs_as)
print("LAYERS", r.layers)
print(r.stdout, r.stderr)
"""

AGAINST_THE_GATEWAY = """
import os
def attempt(name, fn):
    try:
        print(name, "DONE", repr(fn())[:60])
    except OSError as e:
        print(name, "refused", e.errno)
def memory():
    with open(f"/proc/{GATEWAY}/maps") as fh:
        heap = next(line for line in fh if "[heap]" in line)
    with open(f"/proc/{GATEWAY}/mem", "r+b") as fh:
        fh.seek(int(heap.split("-")[0], 16))
        return len(fh.read(64))
attempt("environ", lambda: open(f"/proc/{GATEWAY}/environ", "rb").read())
attempt("memory", memory)
attempt("descriptors", lambda: os.listdir(f"/proc/{GATEWAY}/fd"))
attempt("folder", lambda: os.listdir(f"/proc/{GATEWAY}/cwd"))
"""


def test_a_weak_run_of_a_gateway_that_is_not_root_cannot_reach_the_gateway_process() -> None:
    """The run is the gateway's user, so /proc/<gateway>/environ (the provider keys), /proc/<gateway>/mem (its
    memory, opened for writing), /proc/<gateway>/fd and cwd were the run's to open: all four DONE, the key read.
    The gateway now makes itself not dumpable (prctl): those files are root's, ptrace-style access refused. (Where
    the kernel lets the gateway make a user namespace the run has no /proc at all: the next test.)"""
    out = _gateway_runs(AGAINST_THE_GATEWAY, user_namespace=False)
    assert SECRET not in out, out
    for name in ("environ", "memory", "descriptors", "folder"):
        assert f"{name} refused 13" in out, out


OUTSIDE = """
import os
""" + attempt_prelude("DONE") + """def write(path):
    def into():
        with open(path, "w") as fh:
            fh.write("for the gateway's user to find")
    return into
attempt("its user's file", write(os.path.join(HOME, ".bashrc")))
attempt("tmp", write("/tmp/tw-round5-left-behind"))
attempt("own folder", write("mine.txt"))
try:
    print("processes", os.listdir("/proc")[:3])
except PermissionError:  # (Landlock, session 25)
    print("processes []")
"""


def test_a_weak_run_of_a_gateway_that_is_not_root_writes_nothing_outside_its_folder(tmp_path: Any) -> None:
    """Where the kernel lets a user make a user namespace, the run gets what a root gateway's weak run has: the
    host read-only but for its folder (a tmpfs), and no /proc. Before, the code wrote any file of the gateway's
    user (its `.bashrc`: `its user's file DONE`) and into /tmp, and saw every process in /proc."""
    if not _user_namespaces():
        unavailable("this kernel lets no unprivileged user make a user namespace (user.max_user_namespaces, "
                    "an LSM): a weak run of a gateway that is not root writes wherever its user may")
    home = tempfile.mkdtemp(prefix="tw-r5-home-")
    os.chown(home, GATEWAY_UID, GATEWAY_UID)
    try:
        out = _gateway_runs(f"HOME = {home!r}\n" + OUTSIDE)
        # (its folder, in /tmp here, is hidden too since session 25: ENOENT, not EROFS)
        assert "its user's file refused 2" in out and "tmp refused 30" in out, out
        assert "own folder DONE" in out and "processes []" in out, out
        assert not os.path.exists(os.path.join(home, ".bashrc")) and not os.path.exists("/tmp/tw-round5-left-behind")
    finally:
        shutil.rmtree(home, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink("/tmp/tw-round5-left-behind")


def _user_namespaces() -> bool:
    """Whether an unprivileged user (GATEWAY_UID) may make a user namespace here."""
    def become() -> None:
        os.setgroups([])
        os.setresgid(GATEWAY_UID, GATEWAY_UID, GATEWAY_UID)
        os.setresuid(GATEWAY_UID, GATEWAY_UID, GATEWAY_UID)

    check = "import ctypes, sys\nsys.exit(ctypes.CDLL(None).unshare(0x10000000) != 0)"
    return subprocess.run(["/usr/bin/env", "python3", "-I", "-S", "-c", check], preexec_fn=become, cwd="/",
                          capture_output=True, timeout=60).returncode == 0


def _as_gateway_user() -> tuple[identity.User, str, Any]:
    """The unprivileged gateway's user, the project's `src` and the prepared switch to that user."""
    if os.geteuid() != 0:
        unavailable("the test makes an unprivileged gateway: it needs root (id -u is not 0)")
    user = identity.User(GATEWAY_UID, GATEWAY_UID)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    reach = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), os.path.realpath(src)]
    return user, src, identity.switcher(user, identity.plan(reach, user))


def _gateway_runs(program: str, user_namespace: bool = True) -> str:
    """What a gateway of uid GATEWAY_UID (the provider key in its environment) printed after its weak run of
    `program` (hook off), the run's stdout among it."""
    _, src, prepared = _as_gateway_user()
    r = subprocess.run([sys.executable, "-c", GATEWAY, src, program,
                        "user-namespace" if user_namespace else "no-user-namespace"], capture_output=True, text=True,
                       timeout=180, cwd="/tmp", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                     "OPENAI_API_KEY": SECRET},
                       preexec_fn=lambda: identity.switch(prepared))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"RUNS_AS the gateway's own user (uid {GATEWAY_UID})" in r.stdout, r.stdout
    return r.stdout


@pytest.mark.parametrize("why", ["sandbox: {allow_weak: true}", "ensembles: {trusted: [tools.yaml]}"])
def test_every_process_of_serve_with_workers_is_shielded(why: str) -> None:
    """`serve --workers 2` by a user that is not root, the weak sandbox allowed: the supervising process holds the
    same environment (the keys) as its workers, and a worker's run is the same user. Each process's /proc files
    are root's (not dumpable), the supervisor's included (the workers make the sandbox's settings, it does not).
    So with trusted ensembles, whose scripts run on the host as that user (review38c: a worker made itself not
    dumpable before its script ran, but the supervisor and the other workers stayed readable, keys and memory)."""
    import time

    user, src, prepared = _as_gateway_user()
    folder = tempfile.mkdtemp(prefix="tw-shield-")
    os.chown(folder, user.uid, user.gid)
    with open(os.path.join(folder, "tierwise.yaml"), "w") as fh:
        fh.write(f"ledger: {{enabled: false}}\n{why}\n"
                 "providers: {up: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
                 "models: {m: {provider: up, model: x}}\nroutes: {main: m}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": src, "OPENAI_API_KEY": SECRET,
           "HOME": folder}
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "--workers", "2", "--port", "0"],
                            cwd=folder, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: identity.switch(prepared))
    try:
        lines = []
        while (line := proc.stderr.readline()) and "serving on" not in line:  # type: ignore[union-attr]
            lines.append(line)
        assert "serving on" in line, "".join(lines)[-2000:]
        workers: list[int] = []
        for _ in range(600):  # the workers build their apps (the sandbox's settings among them)
            workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == proc.pid]
            if len(workers) == 2 and all(_owner(w) == 0 for w in workers):
                break
            time.sleep(0.1)
        owners = {pid: _owner(pid) for pid in (proc.pid, *workers)}
        assert len(workers) == 2 and set(owners.values()) == {0}, owners  # 61000: its user may open them
    finally:
        proc.terminate()
        proc.communicate(timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def _owner(pid: int) -> int:
    """The owner of /proc/<pid>/environ: the process's user, or root when the process is not dumpable."""
    try:
        return os.stat(f"/proc/{pid}/environ").st_uid
    except OSError:
        return -1
