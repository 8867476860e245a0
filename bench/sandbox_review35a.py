"""review35a (bench/RESULTS.md "Sandbox review 35a"): sandbox round 16 attacked. Not a test: it prints what it saw.

    PYTHONPATH=src:. .venv/bin/python bench/sandbox_review35a.py truncate --abi 1|2|3|7
    PYTHONPATH=src:. .venv/bin/python bench/sandbox_review35a.py locks --mode bwrap|landlock [--one-task]

- `truncate` (Landlock alone, the run's ruleset made for ABI --abi, as a kernel of that ABI enforces it): every route
  a run has to empty or shrink a host program's 0666 file of a folder bound in read-only, with the file's size after
  each (18 bytes to start).
- `locks` (`threads=True` unless --one-task): what real locking code meets in a run: sqlite3 (four threads, 50
  inserts each), `filelock` 4.x (this venv's) and 3.20 (/work/main/.tools/aider's, where present), portalocker (a
  wheel unpacked from /opt/pypi/files, where present), fcntl.lockf, mailbox, shelve.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import glob
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, landlock, run_script
from tierwise.sandbox import bwrap as bwrap_mod

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.security.sandbox_programs import host_file  # noqa: E402 (the tests' planted host file)

ROUTES = r'''
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, fn):
    try:
        fn(); print(f"{name:52} DONE     size {os.path.getsize(BOUND)}")
    except OSError as e:
        print(f"{name:52} refused {e.errno:2} size {os.path.getsize(BOUND)}")
def sc(*a):
    r = libc.syscall(*a)
    if r < 0:
        raise OSError(ctypes.get_errno(), "syscall")
    return r
def reopen(flags):
    fd = os.open(BOUND, os.O_PATH)
    os.close(os.open(f"/proc/self/fd/{fd}", flags))
def with_fd(flags, fn):
    fd = os.open(BOUND, flags)
    try:
        fn(fd)
    finally:
        os.close(fd)
b = BOUND.encode()
attempt("truncate(path)", lambda: os.truncate(BOUND, 0))
attempt("open O_RDONLY|O_TRUNC", lambda: os.close(os.open(BOUND, os.O_RDONLY | os.O_TRUNC)))
attempt("open O_RDONLY|O_TRUNC|O_CREAT", lambda: os.close(os.open(BOUND, os.O_RDONLY | os.O_TRUNC | os.O_CREAT)))
attempt("open access mode 3|O_TRUNC", lambda: os.close(os.open(BOUND, 3 | os.O_TRUNC)))
attempt("open access mode 3", lambda: os.close(os.open(BOUND, 3)))
attempt("O_PATH, reopen /proc/self/fd mode 3|O_TRUNC", lambda: reopen(3 | os.O_TRUNC))
attempt("openat2 access mode 3|O_TRUNC", lambda: os.close(sc(437, -100, b, struct.pack("QQQ", 3 | os.O_TRUNC, 0, 0), 24)))
attempt("creat(path) (O_WRONLY|O_CREAT|O_TRUNC)", lambda: os.close(sc(85, b, 0o644)))
attempt("open O_WRONLY", lambda: os.close(os.open(BOUND, os.O_WRONLY)))
attempt("ftruncate of an O_RDONLY descriptor", lambda: with_fd(os.O_RDONLY, lambda fd: os.ftruncate(fd, 0)))
attempt("fallocate PUNCH_HOLE, O_RDONLY descriptor", lambda: with_fd(os.O_RDONLY, lambda fd: sc(285, fd, 3, 0, 18)))
attempt("copy_file_range into an O_RDONLY descriptor", lambda: with_fd(os.O_RDONLY, lambda fd: os.copy_file_range(fd, fd, 1, 0, 0)))
attempt("hard link into its folder, truncate the link", lambda: (os.link(BOUND, "lnk"), os.truncate("lnk", 0)))
attempt("symlink in its folder, open O_WRONLY|O_TRUNC", lambda: (os.symlink(BOUND, "sym"), os.close(os.open("sym", os.O_WRONLY | os.O_TRUNC))))
attempt("rename its file over it", lambda: (open("x", "w").write("x"), os.rename("x", BOUND)))
attempt("unlink", lambda: os.unlink(BOUND))
attempt("io_uring_setup", lambda: sc(425, 8, ctypes.create_string_buffer(120)))
'''

LOCKS = r'''
import os, sys, threading
def t(name, fn):
    try:
        print(f"{name:44} OK     {fn()}")
    except BaseException as e:
        print(f"{name:44} FAILED {type(e).__name__}: {str(e)[:110]}")
def sq():
    import sqlite3
    sqlite3.connect("x.db").execute("create table t(a)")
    def w(i):
        c = sqlite3.connect("x.db", timeout=5)
        for _ in range(50):
            c.execute("insert into t values (?)", (i,)); c.commit()
    ts = [threading.Thread(target=w, args=(i,)) for i in range(4 if THREADS else 0)]
    [x.start() for x in ts]; [x.join() for x in ts]
    return sqlite3.connect("x.db").execute("select count(*) from t").fetchone()[0]
t("sqlite3, 4 threads x 50 inserts", sq)
def count(filelock):
    n = [0]
    def w():
        for _ in range(100):
            with filelock.FileLock("c.lock"):
                v = n[0]; n[0] = v + 1
    if not THREADS:
        w(); return n[0]
    ts = [threading.Thread(target=w) for _ in range(4)]
    [x.start() for x in ts]; [x.join() for x in ts]
    return f"{n[0]} of 400"
def second(filelock):
    a = filelock.FileLock("e.lock", is_singleton=False)
    b = filelock.FileLock("e.lock", is_singleton=False)
    a.acquire()
    try:
        b.acquire(timeout=0.3); return "the second object ALSO got it"
    except filelock.Timeout:
        return "the second object timed out (excludes)"
for lib in LIBS:
    sys.path.insert(0, lib)
    for k in [k for k in sys.modules if k.startswith("filelock")]:
        del sys.modules[k]
    import filelock
    t(f"filelock {filelock.__version__} FileLock, 4 threads x 100", lambda: count(filelock))
    t(f"filelock {filelock.__version__} two lock objects, one file", lambda: second(filelock))
    sys.path.remove(lib)
if PL:
    sys.path.insert(0, PL)
    import portalocker
    def pl():
        with portalocker.Lock("p.lock", timeout=1):
            return "held"
    t("portalocker 4.4.0 Lock", pl)
import fcntl
t("fcntl.flock", lambda: fcntl.flock(os.open("r.lock", os.O_CREAT | os.O_RDWR), fcntl.LOCK_EX))
t("fcntl.lockf", lambda: fcntl.lockf(os.open("l.lock", os.O_CREAT | os.O_RDWR), fcntl.LOCK_EX))
def mbox():
    import mailbox
    m = mailbox.mbox("mb"); m.lock(); m.add("From: a\n\nhi"); m.flush(); m.unlock(); return len(m)
t("mailbox.mbox lock/add", mbox)
def shelf():
    import shelve
    s = shelve.open("s"); s["a"] = 1; s.close(); return "ok"
t("shelve", shelf)
'''


def weak(host_in_sight: bool) -> None:
    bwrap_mod.bwrap_path = lambda: None  # type: ignore[assignment]
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    if host_in_sight:
        backend.weak_read_only_host = functools.cache(lambda: False)  # type: ignore[assignment]


async def truncate(abi: int) -> None:
    kernel = landlock.abi()
    landlock.abi = lambda: min(abi, kernel)  # type: ignore[assignment]
    weak(True)
    bound = host_file("tw-r35a-", '{"bound": "state"}', "shared.json")
    folder = os.path.dirname(bound)
    try:
        script = os.path.join(folder, "agent.py")
        with open(script, "w") as fh:
            fh.write(f"BOUND = {bound!r}\n" + ROUTES)
        r = await run_script(script, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256), ro_binds=[folder],
                             audit_hook=False)
        print(f"Landlock ABI {min(abi, kernel)}, layers {r.layers}, ok {r.ok}\n{r.stdout}{r.stderr[-600:]}")
        print("the host's file after:", os.path.getsize(bound), "bytes")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def locks(mode: str, threads: bool) -> None:
    if mode != "bwrap":
        weak(mode == "landlock")
    import filelock
    libs = tempfile.mkdtemp(prefix="tw-r35a-libs-")
    try:
        paths = []
        for name, source in (("fl4", os.path.dirname(filelock.__file__)),
                             ("fl3", "/work/main/.tools/aider/lib/python3.11/site-packages/filelock")):
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(libs, name, "filelock"))
                paths.append(os.path.join(libs, name))
        wheels = glob.glob("/opt/pypi/files/portalocker-4.4.0-*.whl")
        pl = ""
        if wheels:
            pl = os.path.join(libs, "pl")
            zipfile.ZipFile(wheels[0]).extractall(pl)
        script = os.path.join(libs, "prog.py")
        with open(script, "w") as fh:
            fh.write(f"THREADS = {threads}\nLIBS = {paths!r}\nPL = {pl!r}\n" + LOCKS)
        for root, dirs, files in os.walk(libs):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        os.chmod(libs, 0o755)
        r = await run_script(script, limits=SandboxLimits(wall_s=60, cpu_s=20, memory_mb=512, threads=threads),
                             ro_binds=[libs], audit_hook=False)
        print(f"mode {mode}, threads {threads}, ok {r.ok}\n{r.stdout}")
    finally:
        shutil.rmtree(libs, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("part", choices=["truncate", "locks"])
    p.add_argument("--abi", type=int, default=7)
    p.add_argument("--mode", default="landlock", choices=["bwrap", "weak", "landlock"])
    p.add_argument("--one-task", action="store_true")
    a = p.parse_args()
    asyncio.run(truncate(a.abi) if a.part == "truncate" else locks(a.mode, not a.one_task))


if __name__ == "__main__":
    main()
