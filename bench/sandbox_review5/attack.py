"""A weak run against its namespace, cgroups, folder and the hidden folders (hook off): attack.py SRC MODE (weak, weak-range)."""
import asyncio
import os
import sys

sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, run_python

mode = sys.argv[2]
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True, **({"run_as_range": "61184-61439"} if "range" in mode else {}))
CODE = r'''
import os, glob, ctypes, struct
def t(name, fn):
    try:
        print(name, "DONE", repr(fn())[:100])
    except BaseException as e:
        print(name, "refused", type(e).__name__, getattr(e, "errno", ""), str(e)[:60])
print("ids", os.getresuid(), os.getresgid(), os.getgroups())
libc = ctypes.CDLL(None, use_errno=True)
hdr = struct.pack("Ii", 0x20080522, 0); data = ctypes.create_string_buffer(24)
libc.capget(ctypes.c_char_p(hdr), data)
print("caps", struct.unpack("6I", data.raw))
fds = []
for fd in range(3, 256):
    try:
        os.fstat(fd); fds.append((fd, os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self") else "?"))
    except OSError:
        pass
print("fds", fds)
t("setgroups", lambda: os.setgroups([0]))
t("setuid0", lambda: os.setuid(0))
t("setresuid other", lambda: os.setresuid(1000, 1000, 1000))
t("unshare user", lambda: os.unshare(os.CLONE_NEWUSER) if hasattr(os, "unshare") else libc.unshare(0x10000000) or ctypes.get_errno())
t("umount proc", lambda: libc.umount2(b"/proc", 2) or ctypes.get_errno())
t("proc list", lambda: os.listdir("/proc"))
t("write proc", lambda: open("/proc/x", "w"))
t("cgroups seen", lambda: sorted(set(p.rsplit("/", 1)[-1] for p in glob.glob("/sys/fs/cgroup/*/**/tierwise-*", recursive=True)))[:4])
mine = [l.strip() for l in open("/proc/self/cgroup")] if os.path.exists("/proc/self/cgroup") else []
print("own cgroup via proc", mine)
for cg in glob.glob("/sys/fs/cgroup/pids/**/tierwise-*", recursive=True) + glob.glob("/sys/fs/cgroup/memory/**/tierwise-*", recursive=True):
    for f in ("pids.max", "memory.limit_in_bytes"):
        p = os.path.join(cg, f)
        if os.path.exists(p):
            t("raise " + p[-40:], lambda: open(p, "w").write("max" if "pids" in f else str(1 << 40)))
    t("own mode " + cg[-30:], lambda: oct(os.stat(os.path.join(cg, "cgroup.procs")).st_mode) + " uid %d" % os.stat(os.path.join(cg, "cgroup.procs")).st_uid)
t("move out pids", lambda: open("/sys/fs/cgroup/pids/tw61/cgroup.procs", "w").write(str(os.getpid())))
t("home list", lambda: os.listdir(os.path.expanduser("~")))
t("gateway cwd", lambda: os.listdir(CWD))
t("tmp write", lambda: open("/tmp/tw-review24a-x", "w"))
t("devshm write", lambda: open("/dev/shm/tw-review24a-x", "w"))
t("self mount", lambda: libc.mount(b"none", b".", b"tmpfs", 0, None) or ctypes.get_errno())
t("chmod folder", lambda: os.chmod(".", 0o777))
t("link host file", lambda: os.link("/etc/passwd", "pw"))
t("symlink out + write", lambda: (os.symlink("/tmp/tw-review24a-y", "ln"), open("ln", "w")))
t("tmpfs over", lambda: open("big", "wb").write(b"x" * (80 << 20)))
'''
r = asyncio.run(run_python(f"CWD = {os.getcwd()!r}\n" + CODE, limits=SandboxLimits(wall_s=60, work_mb=64), audit_hook=False))
print("MODE", mode, "RC", r.returncode, "RUNS_AS", r.runs_as, r.layers)
print(r.stdout)
print("STDERR", r.stderr[-1500:])
