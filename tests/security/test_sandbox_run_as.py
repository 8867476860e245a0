"""A gateway running as root ran its sandboxed code as root outside the sandbox: bubblewrap's
`--uid 65534` is mapped back to the uid that ran bwrap, so a 0600 root-only file in a folder
bound into the sandbox was readable, and the weak sandbox (no bubblewrap) could write in any
root-owned folder. Now the code switches to `sandbox.run_as` (65534) first
(tierwise.sandbox.identity). Each test runs the OS layer alone (no audit hook), in bubblewrap and
in the weak sandbox. Under CI the tests run as root; elsewhere they need root to mean anything."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tierwise import sandbox
from tierwise.config import SandboxConfig
from tierwise.errors import ConfigError
from tierwise.sandbox import SandboxLimits, backend, identity, run_python, run_script, runner
from tierwise.sandbox import bwrap as bwrap_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

if os.geteuid() != 0:  # under CI the machine runs the tests as root: a failure there, a skip elsewhere
    unavailable("these tests need root (id -u is not 0): a gateway that is not root runs its code as itself")

READER = """
import os, sys
folder = os.path.dirname(os.path.abspath(__file__))  # weak: where the folder is staged
for name in ("public", "secret"):
    try:
        with open(os.path.join(folder, name)) as fh:
            print(name, "READ", fh.read().strip())
    except OSError as e:
        print(name, "refused", e.errno)
for target in (os.path.join(folder, "root-only", "planted"), os.path.join(folder, "planted")):
    try:
        with open(target, "w") as fh:
            fh.write("x")
        print("write", "MADE", target)
    except OSError as e:
        print("write", "refused", e.errno)
with open("mine.txt", "w") as fh:  # the run's own folder stays the code's to use
    fh.write("ok")
print("own folder", open("mine.txt").read())
"""


@pytest.fixture(params=["bwrap", "weak"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    sandbox.status.cache_clear()
    if request.param == "weak":
        monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
        sandbox.configure(allow_weak=True)
    else:
        sandbox.configure()
        if not sandbox.status().strong:
            unavailable(f"no bubblewrap sandbox here: {sandbox.status().problem}")
    yield request.param
    sandbox.status.cache_clear()
    sandbox.configure()


@pytest.fixture
def bound_folder() -> Iterator[str]:
    """A root-owned 0755 folder inside a 0700 one (as the interpreter's, under /root, is) with a
    0644 file, a 0600 root-only secret, a 0755 root-owned subfolder, and the script that tries them."""
    private = tempfile.mkdtemp(prefix="tierwise-run-as-")
    folder = os.path.join(private, "shared")
    os.mkdir(folder, 0o755)
    try:
        for name, mode, text in (("public", 0o644, "everyone may read this"), ("secret", 0o600, "ROOT-ONLY-SECRET"),
                                 ("reader.py", 0o644, READER)):
            path = os.path.join(folder, name)
            with open(path, "w") as fh:
                fh.write(text)
            os.chmod(path, mode)
        os.mkdir(os.path.join(folder, "root-only"), 0o755)
        yield folder
    finally:
        shutil.rmtree(private)


async def test_root_only_file_in_a_bound_folder_is_not_readable(mode: str, bound_folder: str) -> None:
    r = await run_script(os.path.join(bound_folder, "reader.py"), ro_binds=[bound_folder],
                         limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "public READ everyone may read this" in r.stdout, r.stdout  # the folder is there to read
    assert "ROOT-ONLY-SECRET" not in r.stdout, r.stdout
    assert "secret refused 13" in r.stdout, r.stdout
    assert "unprivileged" in r.layers, r.layers


async def test_root_owned_folders_are_not_writable(mode: str, bound_folder: str) -> None:
    """The weak sandbox shares the host's filesystem: as root it planted files in root's folders."""
    r = await run_script(os.path.join(bound_folder, "reader.py"), ro_binds=[bound_folder],
                         limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "MADE" not in r.stdout, r.stdout
    assert not os.path.exists(os.path.join(bound_folder, "root-only", "planted"))
    assert not os.path.exists(os.path.join(bound_folder, "planted"))
    assert "own folder ok" in r.stdout, r.stdout


async def test_run_python_runs_unprivileged_and_its_folder_is_cleaned(mode: str) -> None:
    """run_python's folder (weak: a host folder now owned by the sandbox user) is usable and removed."""
    code = ("import os, sys\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\nos.chmod('a/b', 0o500)\n"
            "print('cwd', os.getcwd())\n")
    before = set(os.listdir(tempfile.gettempdir()))
    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "unprivileged" in r.layers, r.layers
    left = {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("tierwise-sandbox-")}
    assert not left, left


def test_run_as_refuses_root() -> None:
    for bad in (0, "root"):
        with pytest.raises(ValueError):
            SandboxConfig(run_as=bad)
    assert SandboxConfig().run_as == 65534


def test_run_as_of_uid_4294967295_is_refused() -> None:
    """(uid_t)-1 is setresuid's "leave unchanged": `run_as: 4294967295` kept the code root while
    the probe passed and the runs claimed `unprivileged` (session 22 review)."""
    for bad in (4294967295, "4294967295", 2**32, "4294967296"):
        with pytest.raises(ValueError):
            identity.resolve(bad)
        with pytest.raises(ConfigError):
            sandbox.configure(run_as=bad)
    with pytest.raises(ValueError):
        SandboxConfig(run_as=4294967295)
    sandbox.configure()


def test_the_switch_never_leaves_the_child_root() -> None:
    """Should a switch ever be asked for an id the kernel reads as "unchanged", the child stops."""
    import subprocess

    prepared = identity.switcher(identity.User(4294967295, 4294967295), None)
    with pytest.raises(subprocess.SubprocessError):
        subprocess.run(["true"], preexec_fn=lambda: identity.switch(prepared), check=True)


def test_an_unknown_run_as_user_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no user named"):
        sandbox.configure(run_as="no-such-user-here")
    sandbox.configure()


@pytest.fixture
def switch_refused(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No CAP_SYS_ADMIN (a restricted container without user namespaces for the staging) simulated
    by a switch that fails in the child, for the probe and the weak sandbox's check alike."""
    real = identity.switch

    def refused(prepared: tuple | None) -> None:
        if prepared is not None:
            raise OSError(1, "sandbox user switch: a mount namespace: Operation not permitted")
        real(prepared)

    monkeypatch.setattr(identity, "switch", refused)
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    yield
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    sandbox.configure()


async def test_where_the_switch_fails_the_code_runs_as_root_only_if_allowed(switch_refused: None) -> None:
    """Before: the code silently ran as root outside bubblewrap (one log line; doctor said so).
    Now that is refused (the gateway does not start with a code verifier; a run raises
    SandboxUnavailable) unless `sandbox.allow_root_outside` says so, and then the run's record says
    ROOT and `layers` has no `unprivileged`."""
    sandbox.configure()
    st = sandbox.status()
    assert not st.strong and st.run_as is None and "cannot run as uid 65534" in (st.problem or ""), st
    assert "allow_root_outside" in (st.problem or "")
    with pytest.raises(ConfigError, match="allow_root_outside"):
        sandbox.require("verifier 'code'")
    with pytest.raises(sandbox.SandboxUnavailable):
        await run_python("print('ran')", limits=LIMITS)

    sandbox.configure(allow_root_outside=True)
    sandbox.status.cache_clear()
    st = sandbox.status()
    assert st.strong and st.run_as is None and "unprivileged" not in st.layers, st
    assert st.run_as_problem and "cannot run as uid 65534" in st.run_as_problem
    r = await run_python("print('ran')", limits=LIMITS)
    assert r.ok and "unprivileged" not in r.layers, (r.stderr, r.layers)
    assert r.runs_as == "ROOT (uid 0)", r.runs_as


async def test_the_weak_sandbox_runs_as_root_only_if_allowed(switch_refused: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The same where bubblewrap is missing and `allow_weak` is set: before, the weak sandbox's code
    (the audit hook its only guard of files) ran as root."""
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.configure(allow_weak=True)
    with pytest.raises(ConfigError, match="allow_root_outside"):
        sandbox.require("verifier 'code'")
    with pytest.raises(sandbox.SandboxUnavailable, match="allow_root_outside"):
        await run_python("print('ran')", limits=LIMITS)
    sandbox.configure(allow_weak=True, allow_root_outside=True)
    r = await run_python("import os\nprint(os.getuid())", limits=LIMITS)
    assert r.ok and r.stdout.strip() == "0" and "unprivileged" not in r.layers, (r.stderr, r.layers)
    assert r.runs_as == "ROOT (uid 0)", r.runs_as


async def test_seen_from_the_host_every_task_of_a_run_is_the_sandbox_user(mode: str) -> None:
    """/proc/<pid>/status of each task of a live run, read by the gateway: uid and gid 65534 (real,
    effective, saved, filesystem), no supplementary group, no capability. Before: `Uid: 0 0 0 0`."""
    async with runner.open_python("import time\nprint('up', flush=True)\ntime.sleep(20)", limits=LIMITS,
                                  audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None
        assert await live.proc.stdout.readline() == b"up\n"
        pids = [live.proc.pid]
        if live.group is not None and live.group.procs:
            with open(live.group.procs[0]) as fh:
                pids = [int(p) for p in fh.read().split()]
        assert pids
        for pid in pids:
            with open(f"/proc/{pid}/status") as fh:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
            assert status["Uid"].split() == ["65534"] * 4, (pid, status["Name"], status["Uid"])
            assert status["Gid"].split() == ["65534"] * 4, (pid, status["Name"], status["Gid"])
            assert status["Groups"].strip() == "", status["Groups"]
            assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
        live.kill()
