"""The bubblewrap command line for one sandbox run: what the sandboxed process sees and is.

bubblewrap (Debian package `bubblewrap`) builds the sandbox with the kernel's own tools: new
user, mount, PID, network, IPC, UTS and cgroup namespaces, pivot_root into a fresh tmpfs root,
every capability dropped, no_new_privs, and our seccomp filter (tierwise.sandbox.seccomp_filter).
The root holds only the interpreter, its standard library (site-packages hidden), the system's
shared libraries and time zones, read-only, and the run's own folder `/work`: a small tmpfs of
its own that vanishes with the sandbox, so no other run can name it and nothing is left to clean
up. A /dev of its own holding only the host's null, zero, full, random and urandom (DEVICES). No /etc, /proc,
/home, /root, /var or /tmp from the host; no network but a loopback of its own. Nothing here runs untrusted code.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

WORK = "/work"
UID = 65534
# What an interpreter needs to start and import its standard library: shared libraries and time
# zones. Not /usr whole: /usr/src or /usr/local may hold an application and its data.
SYSTEM_PATHS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/usr/local/lib", "/lib", "/lib64",
                "/lib32", "/libx32", "/usr/share/zoneinfo", "/nix/store")


# Installed Python packages inside the system's folders (session 30): Debian's `/usr/lib/python3/dist-packages` (apt's
# python3-* packages) and `/usr/local/lib/python3.X/dist-packages` (pip's, system-wide), any Python's `site-packages`
# there. Only the interpreter's own `site-packages` was hidden, so a run read the packages of the system's Pythons,
# the gateway's among them where it is installed there (a Debian interpreter's are all in those folders). The
# sandbox's interpreter runs `-I -S`: it imports none of them. Any Python's (session 31: a Python 2's or PyPy's,
# `python2.7/dist-packages`, were read), at any depth (review31a: one level in only, and an application's own Python
# in a system folder kept its packages in sight, `/usr/lib/google-cloud-sdk/platform/bundledpythonunix/lib/python3.12/
# site-packages` on the test host, as would a virtual environment made there, the gateway's own).
PACKAGE_FOLDERS = frozenset({"dist-packages", "site-packages"})
# Folders looked at at most (the system's folders here: ~11,000, 0.4-0.8 s once per gateway process). Past it the rest
# is not searched, and one log line says so. Not the Nix store: millions of folders, every package a store path of its
# own (hundreds of covers for each run, and Landlock rules for each of its entries); its packages stay in sight.
SEARCHED = 200_000
# The run's /dev (session 35): without one `open(os.devnull)` failed (pytest's capture, subprocess.DEVNULL, logging to
# /dev/null). A read-only tmpfs of the run's own holding binds of these host nodes and nothing else: not bwrap's `--dev`,
# whose /dev is a writable tmpfs with no size (half the RAM) and brings /dev/tty, a devpts instance (ptys count against
# the machine's kernel.pty.max) and links into a /proc the run has not. A bind of a host node is the host's inode on a
# writable mount (bwrap's `--ro-bind` and `--remount-ro` add nodev, and a nodev node does not open): its times could be
# set by any run (utimensat with NULL needs only write permission) and seen by every other run and by the host, so the
# filter makes the time-setting calls do nothing in bubblewrap runs (seccomp_filter.TIMES; docs/security/sandbox.md).
DEVICES = ("null", "zero", "full", "random", "urandom")
# The run's environment (session 36), in bubblewrap and weak runs alike: glibc gives each new thread that allocates a
# malloc arena of its own, up to 8 per CPU, each reserving 64 MB of address space, which RLIMIT_AS counts; a run with
# threads allowed started 14 sleeping threads at `memory_mb` 512 (its pids cgroup allows 64), fewer on a machine with
# more CPUs, where a ThreadPoolExecutor's workers failed with "can't start new thread" far below the run's memory. One
# arena: 62 at 512 MB (their 8 MB stacks the bound); `threading.stack_size` lowers that.
ENVIRONMENT = (("MALLOC_ARENA_MAX", "1"), ("USER", "sandbox"), ("LOGNAME", "sandbox"))
# The run's home is its own folder (session 37): with no HOME and no passwd entry for its uid, `pathlib.Path.home()`
# raised RuntimeError, `getpass.getuser()` KeyError and `os.path.expanduser("~")` answered "~" in every mode, so an
# ordinary program that keeps a cache or a config in the home failed. USER/LOGNAME name no one of the host.
HOME = "HOME"
DEV_SIZE = 16 * 1024
# The run's /dev/shm (session 36): without one, `multiprocessing.Lock()` (sem_open makes a file there) failed, and
# with it every primitive built on it: `multiprocessing.Queue`, and `multiprocessing.pool.ThreadPool` (threads alone,
# but it makes a SimpleQueue, so a Lock) raised FileNotFoundError in every run with threads. A tmpfs of the run's own
# of SHM_MB, writable (the rest of /dev stays read-only); its pages count in the run's memory cgroup, whose limit has
# room for it (runner); processes are still refused, so `multiprocessing.Pool` still fails (at its fork).
SHM_MB = 4
NOT_SEARCHED = ("/nix/store",)


@functools.cache
def installed_packages() -> tuple[str, ...]:
    """The folders of installed Python packages inside SYSTEM_PATHS, at any depth (real paths; a link named as one is
    followed to its folder where that is inside them too: it was left out, and the folder it names stayed in sight)."""
    roots = [os.path.realpath(r) for r in SYSTEM_PATHS if os.path.isdir(r) and not os.path.islink(r)
             and r not in NOT_SEARCHED]
    found: set[str] = set()
    seen = 0
    for root in roots:
        for top, folders, _ in os.walk(root):
            seen += 1
            if seen > SEARCHED:
                logging.getLogger("tierwise.sandbox").warning(
                    "sandbox: more than %d folders in the system's folders; installed Python packages past them are "
                    "not hidden from runs", SEARCHED)
                return _outermost(found)
            for name in [n for n in folders if n in PACKAGE_FOLDERS]:
                folders.remove(name)
                real = os.path.realpath(os.path.join(top, name))
                if os.path.isdir(real) and any(_inside(real, r) for r in roots):
                    found.add(real)
    return _outermost(found)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(paths: set[str]) -> tuple[str, ...]:
    """One folder per tree (a cover over a folder hides what is inside it)."""
    return tuple(sorted(p for p in paths if not any(o != p and _inside(p, o) for o in paths)))


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def interpreter() -> str:
    """The real interpreter file (not a venv symlink): the sandbox shows no venv."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


@dataclass(frozen=True, slots=True)
class Layout:
    """The read-only part of the sandbox's filesystem, the same for every run of this process."""

    python: str
    binds: tuple[str, ...]  # folders and files bound read-only at the same path
    links: tuple[tuple[str, str], ...]  # (link, target): /lib -> usr/lib on merged-/usr systems
    masks: tuple[str, ...]  # folders inside a bind hidden under an empty tmpfs


@functools.cache
def layout() -> Layout:
    python = interpreter()
    stdlib = os.path.dirname(os.__file__)
    prefix_lib = os.path.dirname(stdlib)  # <prefix>/lib, with libpythonX.Y.so for shared builds
    links, dirs = [], []
    for path in (*SYSTEM_PATHS, prefix_lib, python):
        if os.path.islink(path) and os.path.dirname(path) == "/":
            links.append((path, os.readlink(path)))
        elif os.path.exists(path):
            dirs.append(os.path.realpath(path))
    dirs = sorted(set(dirs))
    # One bind per tree: a path inside another bound path comes with it.
    binds = tuple(d for d in dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in dirs))
    # Installed packages and, if a bind happens to hold them, the gateway's own folder (its
    # config and ledger) and the home folder: hidden under an empty tmpfs.
    private = {os.path.join(stdlib, "site-packages"), os.path.realpath(os.getcwd()),
               os.path.realpath(os.path.expanduser("~")), *installed_packages()}
    masks = tuple(sorted(p for p in private if os.path.isdir(p) and p != "/"
                         and any(p.startswith(b.rstrip("/") + "/") for b in binds)))
    return Layout(python, binds, tuple(sorted(set(links))), masks)


def command(*, seccomp_fd: int, files: Sequence[tuple[int, str]], work_mb: int, argv: Sequence[str],
            ro_binds: Sequence[str] = (), info_fd: int | None = None) -> list[str]:
    """bwrap's argv: `files` are (descriptor, name) copied into /work, `ro_binds` host folders
    shown read-only at the same path, `argv` the program to run (paths as seen inside)."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    lay = layout()
    # No `--new-session` (session 34): bubblewrap is started in a session of its own (the runner's setsid, no
    # controlling terminal; TIOCSTI is refused by the filter anyway), whose autogroup the runner lowers where no shared
    # cpu cgroup holds the runs (tierwise.sandbox.cgroup, `runs_nice`); a second setsid inside put the program in a
    # fresh autogroup at nice 0, weighed as much as the gateway's whole session: 4 runs took ~4x its CPU.
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
           "--cap-drop", "ALL", "--uid", str(UID), "--gid", str(UID), "--hostname", "sandbox", "--clearenv"]
    for name, value in (*ENVIRONMENT, (HOME, WORK)):
        cmd += ["--setenv", name, value]
    for path in lay.binds:
        cmd += ["--ro-bind", path, path]
    for link, target in lay.links:
        cmd += ["--symlink", target, link]
    for path in lay.masks:
        cmd += ["--tmpfs", path]
    for path in ro_binds:
        real = os.path.realpath(path)
        cmd += ["--ro-bind", real, real]
    cmd += ["--size", str(DEV_SIZE), "--perms", "0755", "--tmpfs", "/dev"]
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            cmd += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    cmd += ["--size", str(SHM_MB << 20), "--perms", "1777", "--tmpfs", "/dev/shm"]
    cmd += ["--size", str(work_mb * 1024 * 1024), "--perms", "0700", "--tmpfs", WORK]
    for fd, name in files:
        cmd += ["--perms", "0600", "--file", str(fd), f"{WORK}/{name}"]
    # Read-only, like the root: a mask is an empty tmpfs owned by the sandbox's user, and writable
    # it was a second folder with no size but the kernel's default (half the RAM: 12 GB here).
    for path in ("/", "/dev", *lay.masks):  # (not recursive: the device binds and /dev/shm keep their own mounts)
        cmd += ["--remount-ro", path]
    cmd += ["--chdir", WORK, "--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        cmd += ["--info-fd", str(info_fd)]
    return [*cmd, "--", *argv]
