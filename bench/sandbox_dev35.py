"""devnull35: what a bubblewrap run's /dev gives and what the filter's rules for times break (bench/RESULTS.md,
"Sandbox /dev (session 35, devnull35)").

`PYTHONPATH=<tree>/src nice -n 5 .venv/bin/python bench/sandbox_dev35.py [--times fixed|eperm|naive] [--root-outside]`:
fixed = the filter's TIMES do nothing (the branch), eperm = refused with EPERM, naive = allowed (a writable bind and no
rule; OWNER_METADATA allowed too). --root-outside: the run is root outside (as under allow_root_outside). Prints what the run saw and the host's
/dev nodes' (atime, mtime, ctime, mode) before and after; restores /dev/null's atime and mtime when it can.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import os
import shutil
import tempfile

from tierwise.sandbox import SandboxLimits, backend, bwrap, run_script, seccomp_filter

PROGRAM = r'''
import logging, os, pathlib, shutil, tarfile, io
def t(name, fn):
    try:
        r = fn()
        print(f"{name}: ok {r if r is not None else ''}")
    except Exception as e:
        print(f"{name}: {type(e).__name__} {getattr(e, 'errno', '')} {e}")
t("/dev holds", lambda: sorted(os.listdir("/dev")))
t("mkdir /dev/x", lambda: os.mkdir("/dev/x"))
t("open(os.devnull, 'w') write", lambda: open(os.devnull, "w").write("x"))
t("/dev/zero 4 bytes", lambda: open("/dev/zero", "rb").read(4))
t("/dev/urandom 16 bytes", lambda: len(open("/dev/urandom", "rb").read(16)))
t("/dev/random 16 bytes", lambda: len(open("/dev/random", "rb").read(16)))
def full():
    with open("/dev/full", "w") as fh:
        fh.write("x")
t("/dev/full write", full)
def log():
    lg = logging.getLogger("x"); lg.addHandler(logging.FileHandler(os.devnull)); lg.warning("hi"); return "logged"
t("logging.FileHandler(os.devnull)", log)
st = os.stat("/dev/null")
t("utime /dev/null NULL", lambda: os.utime("/dev/null"))
t("utime /dev/null (1, 1)", lambda: os.utime("/dev/null", ns=(1, 1)))
t("chmod /dev/null 0666 (its mode: harmless to the host)", lambda: os.chmod("/dev/null", 0o666))
t("chown /dev/null", lambda: os.chown("/dev/null", 0, 0))
t("/dev/null after (mtime, mode) changed", lambda: (os.stat("/dev/null").st_mtime_ns != st.st_mtime_ns,
                                                    oct(os.stat("/dev/null").st_mode)))
open("a.txt", "w").write("data")
os.chmod("a.txt", 0o640)
t("own file: utime (1, 1) then mtime", lambda: (os.utime("a.txt", ns=(1, 1)), os.stat("a.txt").st_mtime_ns)[1])
t("own file: chmod 0755 then mode", lambda: (os.chmod("a.txt", 0o755), oct(os.stat("a.txt").st_mode & 0o777))[1])
t("shutil.copy", lambda: shutil.copy("a.txt", "b.txt"))
t("shutil.copy2", lambda: shutil.copy2("a.txt", "c.txt"))
os.makedirs("tree/sub", exist_ok=True); open("tree/sub/f", "w").write("x")
t("shutil.copytree", lambda: shutil.copytree("tree", "tree2"))
def tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("x/y.txt"); info.size = 2; info.mtime = 1_000_000; tf.addfile(info, io.BytesIO(b"hi"))
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        tf.extractall("out", filter="data")
    return os.stat("out/x/y.txt").st_mtime
t("tarfile extractall, member mtime 1000000, got", tar)
t("pathlib touch existing", lambda: pathlib.Path("a.txt").touch())
'''


def host() -> dict[str, tuple[int, int, int, str]]:
    out = {}
    for name in bwrap.DEVICES:
        st = os.stat(f"/dev/{name}")
        out[name] = (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, oct(st.st_mode))
    return out


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--times", choices=["fixed", "eperm", "naive"], default="fixed")
    p.add_argument("--root-outside", action="store_true")
    a = p.parse_args()
    if a.times == "eperm":
        seccomp_filter.TIMES_ERRNO = errno.EPERM
    if a.times == "naive":
        seccomp_filter.TIMES = seccomp_filter.OWNER_METADATA = ()  # type: ignore[assignment]
    if a.root_outside:
        status = backend.status()
        backend.status = lambda: dataclasses.replace(status, run_as=None)  # type: ignore[assignment]
    folder = tempfile.mkdtemp(prefix="tw-dev35-")
    null = os.stat("/dev/null")
    before = host()
    try:
        os.chmod(folder, 0o755)
        script = os.path.join(folder, "prog.py")
        with open(script, "w") as fh:
            fh.write(PROGRAM)
        os.chmod(script, 0o644)
        r = await run_script(script, limits=SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256), ro_binds=[folder],
                             audit_hook=False)
        print(f"times {a.times}, root outside {a.root_outside}, runs as {r.runs_as}, exit {r.returncode}")
        print(r.stdout + r.stderr[-1500:])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        after = host()
        print("host nodes changed:", {n: (before[n], after[n]) for n in before if before[n] != after[n]})
        if os.stat("/dev/null").st_mode != null.st_mode:
            os.chmod("/dev/null", null.st_mode & 0o7777)
        os.utime("/dev/null", ns=(null.st_atime_ns, null.st_mtime_ns))


if __name__ == "__main__":
    asyncio.run(main())
