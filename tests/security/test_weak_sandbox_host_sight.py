"""Session 26's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 7"): what a weak run still saw of
the host where one of its two filesystem bounds (a mount namespace hiding the host, Landlock bounding what it opens)
is missing, and the run with neither. OS layer alone (no audit hook); each test failed before its fix."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude, weak_only  # noqa: F401 (the fixture: weak runs)
from tierwise.commands.doctor import sandbox_report
from tierwise.config import Config
from tierwise.errors import ConfigError
from tierwise.sandbox import SandboxLimits, backend, cgroup, landlock, run_python, weak
from tierwise.sandbox.backend import SandboxUnavailable

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

READ_PLANTED = """
""" + attempt_prelude("READ") + """
attempt("planted", lambda: print(open(PLANTED).read()))
"""


@pytest.fixture
def planted() -> object:
    """A world-readable file with a key in a folder of /tmp (as round 6's), and one at the top of the host."""
    folder = tempfile.mkdtemp(prefix="tw-r7-")
    os.chmod(folder, 0o755)
    in_tmp = os.path.join(folder, "settings.env")
    top = f"/tw-r7-{os.path.basename(folder)}.env"
    for path in (in_tmp, top):
        with open(path, "w") as fh:
            fh.write("OPENAI_API_KEY=sk-ROUND7-PLANTED\n")
        os.chmod(path, 0o644)
    yield in_tmp, top
    shutil.rmtree(folder, ignore_errors=True)
    os.unlink(top)


async def test_a_weak_run_with_neither_a_mount_namespace_nor_landlock_is_refused(
        monkeypatch: pytest.MonkeyPatch, planted: tuple[str, str]) -> None:
    """A gateway that can make no mount namespace for its weak runs (root without CAP_SYS_ADMIN; not root on a kernel
    that lets no unprivileged user make a user namespace) on a kernel without Landlock: its run read the planted key,
    as every file its user may. Now no run (SandboxUnavailable, naming both missing mechanisms), a verifier that runs
    code stops the gateway's start (ConfigError), and doctor says the weak sandbox is refused."""
    monkeypatch.setattr(backend, "weak_read_only_host", functools.cache(lambda: False))  # (configure clears it)
    monkeypatch.setattr(landlock, "abi", lambda: 0)
    with pytest.raises(SandboxUnavailable, match="no mount namespace.*no Landlock"):
        r = await run_python(f"PLANTED = {planted[0]!r}\n" + READ_PLANTED, limits=LIMITS, audit_hook=False)
        assert "sk-ROUND7" not in r.stdout, r.stdout  # (what main did: the key printed)
    with pytest.raises(ConfigError, match="Landlock"):
        backend.require("verifier 'v' (python_code with run or tests)")
    good, message = sandbox_report(Config.model_validate({"sandbox": {"allow_weak": True}}))
    assert not good and "WEAK sandbox refused" in message and "Landlock" in message, message


@pytest.mark.parametrize("lock", ["landlock", "no landlock"])
async def test_regular_files_at_the_top_of_the_host_are_covered(
        monkeypatch: pytest.MonkeyPatch, planted: tuple[str, str], lock: str) -> None:
    """With the host read-only and its folders covered, the regular files at its top (`/.dockerenv`,
    `/container_info.json`, what an installer left there) stayed readable where the kernel has no Landlock: a tmpfs
    covers only folders. Each is now covered by an empty file of mode 0: the planted key is not read, with or
    without Landlock."""
    if not backend.weak_read_only_host():
        unavailable("the weak sandbox cannot make a mount namespace here: its host is not read-only, nor hidden")
    if lock == "no landlock":
        monkeypatch.setattr(landlock, "abi", lambda: 0)
    elif landlock.abi() < 1:
        unavailable("this kernel has no Landlock")
    r = await run_python(f"PLANTED = {planted[1]!r}\n" + READ_PLANTED, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert ("landlock" in r.layers) == (lock == "landlock"), r.layers
    assert "sk-ROUND7" not in r.stdout and "READ" not in r.stdout, r.stdout
    assert "planted refused 13" in r.stdout, r.stdout


XATTRS = """
import os, shutil
""" + attempt_prelude("ANSWERED") + """
attempt("names", lambda: print(os.listxattr(PRIVATE)))
attempt("names, not following", lambda: print(os.listxattr(PRIVATE, follow_symlinks=False)))
attempt("value", lambda: print(os.getxattr(PRIVATE, "user.tierwise")))
with open("mine.txt", "w") as fh:
    fh.write("x")
attempt("own file copied with its metadata", lambda: shutil.copy2("mine.txt", "copy.txt"))
with open("mine.txt") as fh:
    attempt("own file's names by descriptor", lambda: os.listxattr(fh.fileno()))
"""


async def test_a_weak_run_under_landlock_alone_reads_no_extended_attribute_by_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Landlock (the only bound where no mount namespace hides the host) checks what is opened, not what is looked
    at: the run listed the names of the extended attributes of another user's 0600 file (and, as the gateway's own
    user, would read their values). Reading them by path is refused now with ENOTSUP (what a filesystem without
    them answers), so shutil.copy2 still copies the run's own files; by descriptor (its own files) they stay."""
    if landlock.abi() < 1:
        unavailable("this kernel has no Landlock")
    monkeypatch.setattr(backend, "weak_read_only_host", functools.cache(lambda: False))  # (configure clears it)  # as without CAP_SYS_ADMIN
    folder = tempfile.mkdtemp(prefix="tw-r7-xattr-")
    try:
        os.chmod(folder, 0o755)
        private = os.path.join(folder, "ledger.db")
        with open(private, "w") as fh:
            fh.write("private")
        os.chmod(private, 0o600)
        # (a tmpfs keeps user.* attributes only from Linux 6.6: where /tmp is an older one the file has none, and
        # the names are still asked: a filesystem answers an empty list, the filter ENOTSUP)
        with contextlib.suppress(OSError):
            os.setxattr(private, "user.tierwise", b"sk-ROUND7-XATTR")
        r = await run_python(f"PRIVATE = {private!r}\n" + XATTRS, limits=LIMITS, audit_hook=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert r.ok, r.stderr
    assert "landlock" in r.layers and "readonly_host" not in r.layers, r.layers
    assert "user.tierwise" not in r.stdout and "sk-ROUND7" not in r.stdout, r.stdout
    assert "ANSWERED" not in r.stdout.split("own file")[0], r.stdout
    for name in ("names", "names, not following", "value"):
        assert f"{name} refused 95" in r.stdout, r.stdout
    assert "own file copied with its metadata ANSWERED" in r.stdout, r.stdout
    assert "own file's names by descriptor ANSWERED" in r.stdout, r.stdout


FILL = """
import os
made = 0
try:
    while made < 48:  # 768 MB at most, 16 MB a file (RLIMIT_FSIZE)
        fd = os.open(f"f{made}", os.O_CREAT | os.O_WRONLY, 0o600)
        os.posix_fallocate(fd, 0, 16 << 20)
        os.close(fd)
        made += 1
except OSError as e:
    print("stopped", e.errno)
print("MADE", made)
"""


async def test_a_weak_run_under_landlock_alone_cannot_fill_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mount namespace the run's folder was on the host's disk, bounded per file (16 MB) and not in sum:
    fallocate made 1 GB in 24 ms, the disk in seconds. Where the run has a memory cgroup its folder is now on the
    shared-memory tmpfs, whose pages its cgroup is charged for: it stops at memory + folder (here 256 + 64 MB) and
    the kernel kills it there (out_of_memory), nothing past it written."""
    if landlock.abi() < 1:
        unavailable("this kernel has no Landlock")
    if not any(place.controller == "memory" for place in cgroup.places()[0]):
        unavailable("runs get no memory cgroup here")
    if weak.memory_folder_root() is None:
        unavailable("/dev/shm is not a writable tmpfs here")
    monkeypatch.setattr(backend, "weak_read_only_host", functools.cache(lambda: False))  # (configure clears it)
    r = await run_python(FILL, limits=LIMITS, audit_hook=False)
    assert "landlock" in r.layers and "cgroup_memory" in r.layers, r.layers
    made = int(r.stdout.split("MADE", 1)[1]) if "MADE" in r.stdout else None
    assert r.out_of_memory or (made is not None and made * 16 <= 256 + 64), (r.stdout, r.stderr[-500:])
    assert made is None or made < 48, r.stdout


PACKAGES = """
import os, sys
packages = os.path.join(os.path.dirname(os.__file__), "site-packages")
print("PACKAGES", sorted(os.listdir(packages)))
import json, ssl, zoneinfo  # the standard library beside it
print("stdlib", json.dumps(zoneinfo.ZoneInfo("Europe/Stockholm").key), ssl.OPENSSL_VERSION_NUMBER > 0)
"""


@pytest.mark.parametrize("lock", ["landlock", "no landlock"])
async def test_a_weak_run_sees_no_installed_package_as_a_bubblewrap_run(
        monkeypatch: pytest.MonkeyPatch, lock: str) -> None:
    """bubblewrap covers the interpreter's `site-packages` (its runs are `-I -S`); the weak run with the host
    read-only showed it again with the interpreter's installation, and listed and read every installed package.
    Now it is covered by an empty tmpfs once the installation is shown (`identity.Staging.inside`): an empty
    listing, the standard library beside it untouched."""
    if not backend.weak_read_only_host():
        unavailable("the weak sandbox cannot make a mount namespace here: its host is not read-only, nor hidden")
    if lock == "no landlock":
        monkeypatch.setattr(landlock, "abi", lambda: 0)
    installed = os.path.join(os.path.dirname(os.__file__), "site-packages")
    if not os.path.isdir(installed) or not os.listdir(installed):
        unavailable("this interpreter has no installed packages to hide")
    r = await run_python(PACKAGES, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "PACKAGES []" in r.stdout, r.stdout
    assert 'stdlib "Europe/Stockholm" True' in r.stdout, r.stdout
