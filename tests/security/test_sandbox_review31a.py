"""Review of session 31's sandbox attack round 12 (bench/RESULTS.md, "Sandbox review 31a"). OS layer alone (no audit
hook); each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, bwrap, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

READ = attempt_prelude("READ") + """
for path in PATHS:
    attempt(path, lambda: open(path, "rb").read())
"""


def _write(path: str) -> str:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "w") as fh:
        fh.write("KEY = 1\n")
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def system_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], str]]:
    """A folder of the test's own playing a system folder (bwrap.SYSTEM_PATHS), holding an application's own Python
    (as `/usr/lib/google-cloud-sdk/platform/bundledpythonunix/lib/python3.12/site-packages` on the test host) and a
    virtual environment whose `site-packages` is a link to a folder beside it. (packages' files, a standard library's)"""
    system = tempfile.mkdtemp(prefix="tw-review31a-system-")
    os.chmod(system, 0o755)
    try:
        deep = _write(os.path.join(system, "cloud-sdk/platform/bundledpython/lib/python3.12/site-packages/module.py"))
        linked = _write(os.path.join(system, "venv-packages/module.py"))
        os.makedirs(os.path.join(system, "venv/lib/python3.11"), mode=0o755)
        os.symlink(os.path.join(system, "venv-packages"), os.path.join(system, "venv/lib/python3.11/site-packages"))
        standard = _write(os.path.join(system, "cloud-sdk/platform/bundledpython/lib/python3.12/os.py"))
        monkeypatch.setattr(bwrap, "SYSTEM_PATHS", (*bwrap.SYSTEM_PATHS, system))
        bwrap.installed_packages.cache_clear()
        bwrap.layout.cache_clear()
        yield [deep, linked], standard
    finally:
        bwrap.installed_packages.cache_clear()
        bwrap.layout.cache_clear()
        shutil.rmtree(system)


async def _reads_none(packages: list[str], standard: str) -> None:
    r = await run_python(f"PATHS = {[*packages, standard]!r}\n" + READ, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    assert f"{standard} READ" in r.stdout, r.stdout
    for path in packages:
        assert f"{path} refused" in r.stdout, r.stdout


async def test_a_run_reads_no_package_deep_in_a_system_folder(
    mode: str, system_folder: tuple[list[str], str]  # noqa: F811
) -> None:
    """Package folders were looked for one level into a system folder: an application's own Python deeper in one
    (google-cloud-sdk's bundled Python under /usr/lib here: 27 entries read in every mode), a virtual environment made
    there, and a package folder that is a link (left out, its folder stayed in sight) were read. Hidden at any depth."""
    await _reads_none(*system_folder)


async def test_a_run_under_landlock_alone_reads_no_package_deep_in_a_system_folder(
    landlock_alone: None, system_folder: tuple[list[str], str]
) -> None:
    """The same with Landlock alone: its rules go around those folders too."""
    await _reads_none(*system_folder)


def _cpu_cgroup(pid: int | str) -> str | None:
    """The process's cgroup in the v1 cpu hierarchy (None: none here)."""
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            if "cpu" in names.split(","):
                return path
    return None


async def test_the_runs_at_once_weigh_one_process_for_the_cpu(mode: str) -> None:  # noqa: F811
    """Each run is a session of its own, and with the kernel's autogroup each session weighed as much as the gateway's
    whole session: two runs spinning took 0.96-1.08 times the gateway's CPU each (bench/RESULTS.md, "Sandbox attack
    round 12"). Every run of a gateway process now joins one cpu cgroup (v1) below the gateway's, at the weight of one
    process: two runs in progress at once are in it together, from their first task, and it weighs what one did."""
    own = _cpu_cgroup(os.getpid())
    mount = next((m for root, m, kind, opts in cgroup._mounts() if kind == "cgroup" and "cpu" in opts.split(",")
                  and root == "/"), None)
    if own is None or mount is None:
        unavailable("no cgroup v1 cpu hierarchy here (on cgroup v2 the runs keep their weight: docs/security/sandbox.md)")
    program = "import time\nprint('up', flush=True)\ntime.sleep(20)"
    async with runner.open_python(program, limits=LIMITS, audit_hook=False) as one, \
            runner.open_python(program, limits=LIMITS, audit_hook=False) as two:
        groups = []
        for live in (one, two):
            assert live.proc is not None and live.proc.stdout is not None, live.refused
            assert await live.proc.stdout.readline() == b"up\n"
            groups.append(_cpu_cgroup(live.proc.pid))  # (joined between fork and exec: each run's first task)
        assert groups[0] == groups[1] and groups[0] is not None and groups[0] != own \
            and groups[0].startswith(own.rstrip("/") + "/"), \
            (own, groups)
        assert "cgroup_cpu" in one.layers and "cgroup_cpu" in two.layers, (one.layers, two.layers)
        with open(os.path.join(mount, groups[0].lstrip("/"), "cpu.shares")) as fh:
            weight = int(fh.read())
    assert weight == 1024, weight  # (one process's, the kernel's default: a lone run weighs what it did)
