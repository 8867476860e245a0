"""devnull35: a bubblewrap run's /dev (bench/RESULTS.md, "Sandbox /dev (session 35, devnull35)"). Each test failed
before its fix: the first with no /dev at all, the second with the host's nodes bound writable and no filter rule."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tierwise.sandbox import SandboxLimits, bwrap, run_script, status

LIMITS = SandboxLimits(wall_s=60, cpu_s=20, memory_mb=512)

PYTEST_RUN = '''
import os, sys
sys.path.insert(0, SITE)
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
with open("test_inside.py", "w") as fh:
    fh.write("import os, subprocess, sys\\n"
             "def test_devnull():\\n    print('captured'); open(os.devnull, 'w').write('x')\\n"
             "def test_urandom_zero():\\n    assert len(open('/dev/urandom', 'rb').read(16)) == 16\\n"
             "    assert open('/dev/zero', 'rb').read(4) == bytes(4)\\n")
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider", "test_inside.py"])
print("pytest exit", int(code))
'''


@pytest.fixture
def bwrap_only() -> None:
    if not status().strong:
        pytest.fail(f"bubblewrap is not the sandbox here: {status()}")


@pytest.fixture
def pytest_script() -> Iterator[str]:
    """pytest and what it imports, copied into a folder bound in read-only with the script."""
    folder = tempfile.mkdtemp(prefix="tw-dev35-")
    site = os.path.join(folder, "site")
    import _pytest
    import iniconfig
    import packaging
    import pluggy
    import pygments
    for module in (pytest, _pytest, pluggy, iniconfig, packaging, pygments):
        source = os.path.dirname(module.__file__ or "")
        shutil.copytree(source, os.path.join(site, os.path.basename(source)),
                        ignore=shutil.ignore_patterns("__pycache__"))
    py_shim = os.path.join(os.path.dirname(os.path.dirname(_pytest.__file__)), "py.py")
    if os.path.exists(py_shim):
        shutil.copy(py_shim, site)
    script = os.path.join(folder, "agent.py")
    with open(script, "w") as fh:
        fh.write(f"SITE = {site!r}\n" + PYTEST_RUN)
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(folder, 0o755)
    yield script
    shutil.rmtree(folder, ignore_errors=True)


async def test_pytest_runs_inside_a_bubblewrap_run(bwrap_only: None, pytest_script: str) -> None:
    """A bubblewrap run had no /dev at all: pytest's capture opens os.devnull and failed with FileNotFoundError
    ('/dev/null'), as did subprocess.DEVNULL and every program writing to /dev/null."""
    r = await run_script(pytest_script, limits=LIMITS, ro_binds=[os.path.dirname(pytest_script)], audit_hook=False)
    assert "2 passed" in r.stdout and "pytest exit 0" in r.stdout, r.stdout + r.stderr[-2000:]


NODES = json.dumps([f"/dev/{n}" for n in bwrap.DEVICES])
SENDER = f'''
import os, time
NODES = {NODES}
def times(p):
    st = os.stat(p)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_mode
before = {{p: times(p) for p in NODES}}
for _ in range(200):
    for p in NODES:
        for how in (lambda: os.utime(p), lambda: os.utime(p, ns=(1, 1))):
            try:
                how()
            except OSError:
                pass
        fd = os.open(p, os.O_RDWR)
        for how in (lambda: os.read(fd, 1), lambda: os.write(fd, b"1")):
            try:
                how()
            except OSError:
                pass
        for how in (lambda: os.utime(fd), lambda: os.chmod(fd, 0o600)):
            try:
                how()
            except OSError:
                pass
        os.close(fd)
        try:
            os.chmod(p, 0o600)
        except OSError:
            pass
    time.sleep(0.01)
print("sender saw", sum(times(p) != before[p] for p in NODES), "changed")
'''
RECEIVER = f'''
import os, time
NODES = {NODES}
def times(p):
    st = os.stat(p)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_mode
before = {{p: times(p) for p in NODES}}
changed = set()
for _ in range(400):
    changed |= {{p for p in NODES if times(p) != before[p]}}
    time.sleep(0.01)
print("receiver saw", len(changed), "changed", sorted(changed))
'''


def _host_times() -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for name in bwrap.DEVICES:
        st = os.stat(f"/dev/{name}")
        out[name] = (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
    return out


async def test_two_runs_pass_no_bit_through_the_times_of_dev_nodes(bwrap_only: None) -> None:
    """The run's /dev holds binds of the host's nodes (a read-only bind would be nodev: they would not open), so
    `os.utime('/dev/null')` (utimensat with NULL times, write permission enough) set the host inode's times, which a
    concurrent run (and the host) read by `stat`. The filter makes the time-setting calls do nothing in bubblewrap
    runs; modes cannot be changed either (not the owner, or EPERM)."""
    folder = tempfile.mkdtemp(prefix="tw-dev35-")
    try:
        os.chmod(folder, 0o755)
        paths = []
        for name, source in (("sender.py", SENDER), ("receiver.py", RECEIVER)):
            path = os.path.join(folder, name)
            with open(path, "w") as fh:
                fh.write(source)
            os.chmod(path, 0o644)
            paths.append(path)
        host_before = _host_times()
        sent, received = await asyncio.gather(
            *(run_script(p, limits=LIMITS, ro_binds=[folder], audit_hook=False) for p in paths))
        host_after = _host_times()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert "sender saw 0 changed" in sent.stdout, sent.stdout + sent.stderr[-1000:]
    assert "receiver saw 0 changed" in received.stdout, received.stdout + received.stderr[-1000:]
    changed = {n: (host_before[n], host_after[n]) for n in host_before if host_before[n] != host_after[n]}
    assert not changed, f"the host's device nodes changed: {changed}"
