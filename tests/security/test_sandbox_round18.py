"""Session 37's sandbox round (bench/RESULTS.md "Sandbox round 18", bench/sandbox_attack_round18.py). OS layer alone
(no audit hook).

- `kill(0, sig)` is the run's process group, which holds processes of ours outside the run: bubblewrap's (outside its
  PID namespace) and, for a weak run in a PID namespace of its own, the keeper. With a handler of its own for the
  signal a run killed them (the run ended "killed by SIGUSR1"): in bubblewrap whatever the Landlock ABI, in the weak
  sandbox below ABI 6 (no signal scope). `kill` now reaches the run's own PID only, which it did not before (a program
  signalling itself by `os.kill(os.getpid(), sig)` was refused).
- Under Landlock alone (no PID namespace to be had) `getppid` named the gateway's PID; it answers 0 now, as for a parent
  outside the caller's PID namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import CROSS_ATTACK, CROSS_VICTIM, SIGNALS, WEAK_GATEWAY
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, landlock, pidns, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)


@pytest.fixture(params=[None, 5])
def abi(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The Landlock ABI the weak sandbox builds its rules for: this kernel's, and 5 (Linux 6.10-6.11: no signal scope,
    which came with ABI 6)."""
    version = landlock.abi() if request.param is None else min(request.param, landlock.abi())
    monkeypatch.setattr(landlock, "abi", lambda: version)
    yield version


async def test_a_run_signals_no_process_of_ours_through_its_group(mode: str, abi: int) -> None:  # noqa: F811
    """Before: bubblewrap `killed by SIGUSR1` at every ABI (its process outside the namespace took the group's signal),
    the weak sandbox the same at ABI 5 (the keeper); now `kill(0)` is refused and the run lives on."""
    r = await run_python(SIGNALS, limits=LIMITS, audit_hook=False)
    assert r.ok and "STILL HERE" in r.stdout, (r.summary(), r.stdout)
    assert "group refused 1" in r.stdout, r.stdout
    assert "init refused 1" in r.stdout and "init-thread refused 1" in r.stdout, r.stdout
    assert "itself sent 1" in r.stdout, r.stdout  # (a program signals itself by its PID)


async def test_a_run_under_landlock_alone_signals_no_process_of_ours(landlock_alone: None, abi: int) -> None:
    r = await run_python(SIGNALS, limits=LIMITS, audit_hook=False)
    assert "landlock" in r.layers and "pidns" not in r.layers, r.layers
    assert r.ok and "STILL HERE" in r.stdout, (r.summary(), r.stdout)
    assert "group refused 1" in r.stdout and "itself sent 1" in r.stdout, r.stdout
    assert "init refused 1" in r.stdout and "init-thread refused 1" in r.stdout, r.stdout


async def test_a_run_under_landlock_alone_is_not_told_the_gateway_s_pid(landlock_alone: None) -> None:
    """Before: `getppid` was the gateway's PID (this process); now 0, as for a parent in another PID namespace."""
    r = await run_python("import os\nprint('PARENT', os.getppid())", limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    assert "pidns" not in r.layers, r.layers
    assert f"PARENT {os.getpid()}" not in r.stdout, r.stdout
    assert "PARENT 0" in r.stdout, r.stdout


def test_doctor_says_how_to_hide_the_host_s_processes_from_a_run_under_landlock_alone(landlock_alone: None) -> None:
    """A run under Landlock alone tells every living PID of the host and its owner by `stat` of /proc/<pid> (Landlock
    handles no `stat`; 243 here). No mechanism of the gateway's closes it (a /proc of its own needs the mount namespace
    that mode lacks); `hidepid=invisible` on the host's /proc does, and doctor now says so where it is not set."""
    from tierwise.commands.doctor import sandbox_report
    from tierwise.config import Config

    ok, text = sandbox_report(Config.model_validate({"sandbox": {"allow_weak": True}}))
    assert ok, text
    assert ("hidepid=invisible" in text) != pidns.proc_hides_processes(), text


def test_proc_hides_processes_reads_the_last_proc_mount(tmp_path: Path) -> None:
    plain = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    hidden = "66 22 0:40 / /proc rw,relatime - proc proc rw,hidepid=invisible,subset=pid\n"
    for text, expected in ((plain, False), (plain + hidden, True), (hidden + plain, False),
                           (plain.replace("rw\n", "rw,hidepid=2\n"), True), (plain.replace("rw\n", "rw,hidepid=1\n"), False),
                           ("30 1 0:5 / /proc/sys ro - proc proc rw,hidepid=2\n", False)):
        (tmp_path / "mountinfo").write_text(text)
        assert pidns.proc_hides_processes(str(tmp_path / "mountinfo")) == expected, text


# A gateway whose host mounts /proc with hidepid=invisible (made here in a mount namespace of its own, root only), its
# runs under Landlock alone: whether a run tells PID 1 and the gateway's by stat.
GATEWAY_WITH_HIDEPID = WEAK_GATEWAY + """
import asyncio, functools, os
backend.weak_read_only_host = functools.cache(lambda: False)
code = f"import os\\nfor p in (1, {os.getpid()}):\\n    print('SEEN' if os.path.exists(f'/proc/{{p}}') else 'HIDDEN', p)"
r = asyncio.run(run_python(code, limits=SandboxLimits(wall_s=60, cpu_s=20, memory_mb=256), audit_hook=False))
print("LAYERS", r.layers)
print(r.stdout, r.stderr[-500:])
"""


@pytest.mark.parametrize("hidepid", [False, True])
def test_hidepid_hides_the_host_s_processes_from_a_run_under_landlock_alone(hidepid: bool) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or landlock.abi() < 1:
        unavailable("needs root and unshare(1) to mount a /proc of its own, and Landlock")
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    mount = "mount -t proc -o hidepid=invisible proc /proc && " if hidepid else ""
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f'{mount}exec "$0" -c "$1"', sys.executable, GATEWAY_WITH_HIDEPID],
                       capture_output=True, text=True, timeout=180, cwd="/tmp",
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": src})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'landlock'" in r.stdout and "'readonly_host'" not in r.stdout, r.stdout
    # (PID 1 and the gateway: root's, or, for a gateway that is not root, not dumpable, so root's too)
    assert r.stdout.count("HIDDEN" if hidepid else "SEEN") == 2, r.stdout


HOME = """
import getpass, os, pathlib
home = pathlib.Path.home()
(home / ".cache").mkdir(exist_ok=True)
(home / ".cache" / "x").write_text("kept")
print("HOME", home == pathlib.Path.cwd(), os.path.expanduser("~/a") == str(home / "a"), getpass.getuser())
"""


async def test_a_run_has_a_home_of_its_own(mode: str) -> None:  # noqa: F811
    """Before: `Path.home()` raised RuntimeError ("Could not determine home directory"), `getpass.getuser()` KeyError
    (no passwd entry for uid 65534) in every mode. Now the home is the run's own folder and the user is `sandbox`."""
    r = await run_python(HOME, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    assert "HOME True True sandbox" in r.stdout, r.stdout


async def test_a_run_under_landlock_alone_has_a_home_of_its_own(landlock_alone: None) -> None:
    r = await run_python(HOME, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    assert "HOME True True sandbox" in r.stdout, r.stdout


SHM = """
import multiprocessing, os
print("BEFORE", os.listdir("/dev/shm"))
lock = multiprocessing.Lock()
with lock:
    pass
with open("/dev/shm/tierwise-round18", "w") as fh:
    fh.write("x")
n = 0
try:
    with open("/dev/shm/fill", "wb") as fh:
        while n < 64:
            fh.write(bytes(1 << 20))
            fh.flush()
            n += 1
except OSError as e:
    print("FULL", n, e.errno)
print("LOCKED")
"""


async def test_a_run_has_a_dev_shm_of_its_own(mode: str) -> None:  # noqa: F811
    """Before (weak runs with the host read-only): `multiprocessing.Lock()` raised FileNotFoundError (no /dev/shm: /dev
    covered but for five devices), and with it Queue and the thread-only pool.ThreadPool, as bubblewrap's runs did until
    session 36. Now a tmpfs of the run's own in both (bwrap.SHM_MB, ENOSPC past it), empty at its start, never the
    host's."""
    from tierwise.sandbox import backend, bwrap

    if mode == "weak" and not backend.weak_read_only_host():
        unavailable("the weak sandbox cannot make a mount namespace here")
    for _ in range(2):  # (the second run sees nothing of the first's)
        r = await run_python(SHM, limits=LIMITS, audit_hook=False)
        assert r.ok, r.summary()
        assert ("readonly_host" if mode == "weak" else "bwrap") in r.layers, r.layers
        assert "BEFORE []" in r.stdout and "LOCKED" in r.stdout, r.stdout
        assert f"FULL {bwrap.SHM_MB - 1} 28" in r.stdout or f"FULL {bwrap.SHM_MB} 28" in r.stdout, r.stdout
    assert not os.path.exists("/dev/shm/tierwise-round18")


POOL = "import multiprocessing\nwith multiprocessing.Pool(2) as p:\n    print(p.map(abs, [-1, -2]))\n"
SUBPROCESS = "import subprocess, sys\nsubprocess.run([sys.executable, '-c', '1'])\n"
DEV_STDOUT = "with open('/dev/stdout', 'w') as fh:\n    fh.write('x')\n"


@pytest.mark.parametrize("code", [POOL, SUBPROCESS])
async def test_a_run_refused_a_second_process_says_what_to_do_instead(mode: str, code: str) -> None:  # noqa: F811
    """Before: the reason a code verifier gave ended in `PermissionError: [Errno 1] Operation not permitted` (a weak
    run's Pool: FileNotFoundError at its semaphore), read as a broken machine by an agent. Now it ends in a hint."""
    from tierwise.sandbox.limits import PROCESS_HINT

    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert not r.ok and r.summary().endswith(PROCESS_HINT), r.summary()


async def test_a_run_under_landlock_alone_refused_a_pool_says_what_to_do_instead(landlock_alone: None) -> None:
    """(Its Pool fails at its semaphore there, no /dev/shm: session 38's hint says so.)"""
    from tierwise.sandbox.limits import SEMLOCK_HINT

    r = await run_python(POOL, limits=LIMITS, audit_hook=False)
    assert not r.ok and r.summary().endswith(SEMLOCK_HINT), r.summary()


async def test_a_run_opening_dev_stdout_is_told_to_use_sys_stdout(mode: str) -> None:  # noqa: F811
    from tierwise.sandbox.limits import PROC_LINK_HINT

    r = await run_python(DEV_STDOUT, limits=LIMITS, audit_hook=False)
    assert not r.ok and r.summary().endswith(PROC_LINK_HINT) and "sys.stdout" in r.summary(), r.summary()


async def test_a_plain_failure_gets_no_hint(mode: str) -> None:  # noqa: F811
    r = await run_python("raise PermissionError(1, 'Operation not permitted')", limits=LIMITS, audit_hook=False)
    assert not r.ok and "hint:" not in r.summary(), r.summary()


async def test_a_run_under_landlock_alone_opens_no_pipe_of_another_run(landlock_alone: None) -> None:
    """Under Landlock alone a run sees the other runs in progress (same uid: `stat` of /proc/<pid>), and Landlock does
    not check files without a path (pipes): their /proc/<pid>/fd/0-2 are refused by Landlock's ptrace hook (another
    domain), which this holds (a written line would be a forged verdict in the other run's output)."""
    import asyncio

    limits = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=256)
    victim = asyncio.create_task(run_python(CROSS_VICTIM, limits=limits, audit_hook=False))
    await asyncio.sleep(2)
    r = await run_python(CROSS_ATTACK, limits=limits, audit_hook=False)
    v = await victim
    assert r.ok and v.ok, (r.summary(), v.summary())
    pid = int(v.stdout.split()[1])
    assert str(pid) in r.stdout.splitlines()[0], r.stdout  # (it was found: the guarantee is Landlock's, not sight)
    assert "opened" not in r.stdout and r.stdout.count(f"refused {pid}") == 3, r.stdout
    assert "FORGED" not in v.stdout, v.stdout
