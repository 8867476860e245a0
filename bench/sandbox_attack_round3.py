"""Attack round 3 on the strong sandbox (bubblewrap + seccomp + cgroup): escape attempts, the
gateway's secrets, the network, resource exhaustion and cross-run contamination, each run as a
model-written script with the OS layer alone (no audit hook) and reported held / found.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round3.py [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import tempfile
import time

from tierwise.sandbox import SandboxLimits, run_python, run_script, status

LIMITS = SandboxLimits(wall_s=20, cpu_s=10, memory_mb=256)

# Every escape attempt in one script: prints one JSON object {attempt: outcome}.
ESCAPES = r'''
import ctypes, errno, json, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
def sysc(nr, *a):
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())
def t(name, fn):
    try:
        out[name] = repr(fn())[:200]
    except BaseException as e:
        out[name] = f"{type(e).__name__}: {e}"[:200]
t("listdir /proc", lambda: os.listdir("/proc"))
t("open /proc/self/environ", lambda: open("/proc/self/environ", "rb").read())
t("open /proc/1/environ", lambda: open("/proc/1/environ", "rb").read())
t("readlink /proc/1/ns/mnt", lambda: os.readlink("/proc/1/ns/mnt"))
t("listdir /sys", lambda: os.listdir("/sys"))
t("listdir /dev", lambda: os.listdir("/dev"))
t("listdir /", lambda: sorted(os.listdir("/")))
t("listdir /tmp", lambda: os.listdir("/tmp"))
t("environ", lambda: dict(os.environ))
t("argv", lambda: sys.argv)
t("pid, ppid", lambda: (os.getpid(), os.getppid()))
t("uid, euid, groups", lambda: (os.getuid(), os.geteuid(), os.getgroups()))
def fds():
    seen = {}
    for fd in range(1024):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        import stat as S
        kind = "fifo" if S.S_ISFIFO(st.st_mode) else "reg" if S.S_ISREG(st.st_mode) else "chr" if S.S_ISCHR(st.st_mode) else "sock" if S.S_ISSOCK(st.st_mode) else oct(st.st_mode)
        seen[fd] = (kind, st.st_size)
    return seen
t("open descriptors", fds)
# System calls (x86-64 numbers): each should be EPERM/ENOSYS.
t("ptrace(PTRACE_TRACEME)", lambda: sysc(101, 0, 0, 0, 0))
t("ptrace(PTRACE_ATTACH, 1)", lambda: sysc(101, 16, 1, 0, 0))
t("unshare(CLONE_NEWUSER)", lambda: sysc(272, 0x10000000))
t("unshare(CLONE_NEWNS)", lambda: sysc(272, 0x00020000))
t("clone(CLONE_NEWUSER|SIGCHLD)", lambda: sysc(56, 0x10000000 | 17, 0, 0, 0, 0))
t("clone3", lambda: sysc(435, 0, 0))
t("setns", lambda: sysc(308, 0, 0))
t("mount tmpfs", lambda: sysc(165, 0, 0, 0, 0, 0))
t("keyctl(GET_KEYRING_ID)", lambda: sysc(250, 0, -3, 0))
t("add_key", lambda: sysc(248, 0, 0, 0, 0, -3))
t("io_uring_setup", lambda: sysc(425, 8, 0))
t("bpf(PROG_LOAD)", lambda: sysc(321, 5, 0, 0))
t("perf_event_open", lambda: sysc(298, 0, 0, -1, -1, 0))
t("userfaultfd", lambda: sysc(323, 0))
t("memfd_create", lambda: sysc(319, 0, 0))
t("personality(READ_IMPLIES_EXEC)", lambda: sysc(135, 0x0400000))
t("open_by_handle_at", lambda: sysc(304, 0, 0, 0))
t("process_vm_readv(1)", lambda: sysc(310, 1, 0, 0, 0, 0, 0))
t("pidfd_open(1)", lambda: sysc(434, 1, 0))
t("kill(1, SIGKILL)", lambda: sysc(62, 1, 9))
t("kill(-1, SIGKILL)", lambda: sysc(62, -1, 9))
t("prlimit64(1)", lambda: sysc(302, 1, 7, 0, 0))
t("chroot", lambda: sysc(161, 0))
t("pivot_root", lambda: sysc(155, 0, 0))
t("mknod fifo /work", lambda: os.mkfifo("/work/fifo"))
t("socket AF_INET", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
t("socket AF_NETLINK", lambda: sysc(41, 16, 3, 0))
t("socket AF_UNIX", lambda: socket.socket(socket.AF_UNIX))
t("socketpair AF_INET", lambda: sysc(53, 2, 1, 0, 0))
t("write the interpreter", lambda: open(sys.executable, "ab"))
t("write /usr/lib", lambda: open("/usr/lib/x", "w"))
t("TIOCSTI on stdin", lambda: sysc(16, 0, 0x5412, 0))
t("fork", lambda: os.fork())
t("vfork (raw)", lambda: sysc(58))
t("i386 int 0x80 (not tried: a foreign architecture kills the process)", lambda: "skipped")
# An ELF of the host's copied into /work and executed: same process, same filter and namespaces.
def exec_copy():
    import shutil
    shutil.copy(sys.executable, "/work/py")
    os.chmod("/work/py", 0o700)
    return "copied; exec would replace this process under the same filter (not done)"
t("copy an executable into /work", exec_copy)
print(json.dumps(out))
'''

SECRET_ENV = {"OPENAI_API_KEY": "sk-ROUND3-SECRET-IN-GATEWAY-ENV", "ANTHROPIC_API_KEY": "sk-ant-ROUND3"}


async def escapes() -> dict[str, str]:
    # The gateway's environment holds keys: the sandbox must not see any.
    os.environ.update(SECRET_ENV)
    r = await run_python(ESCAPES, limits=LIMITS, audit_hook=False)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    found = json.loads(lines[-1]) if lines else {"run": f"rc={r.returncode} {r.stderr[-300:]}"}
    leaked = [k for k, v in SECRET_ENV.items() if v in r.stdout or v in r.stderr]
    found["secrets seen in output"] = repr(leaked)
    return found


NETWORK = r'''
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
def tcp(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.close()
        return "CONNECTED"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
print("redis", tcp(6379))
print("gateway", tcp(PORT))
'''


async def network() -> dict[str, str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        r = await run_python(NETWORK.replace("PORT", str(port)), limits=LIMITS, audit_hook=False)
    finally:
        server.close()
    return {"loopback to Redis 6379 and to a gateway port": r.stdout.strip().replace("\n", "; ")}


async def disk_and_inodes() -> dict[str, str]:
    code = ("import os\nn = 0\ntry:\n    with open('/work/big', 'wb') as f:\n        while True:\n"
            "            f.write(b'x' * (1 << 20)); f.flush(); n += 1\nexcept OSError as e:\n"
            "    print('bytes', n, 'MB', e.strerror, flush=True)\nm = 0\ntry:\n    while True:\n        open(f'/work/i{m}', 'w').close(); m += 1\n"
            "except OSError as e:\n    print('inodes', m, e.strerror)\n")
    r = await run_python(code, limits=SandboxLimits(wall_s=20, cpu_s=10, memory_mb=256, file_size_mb=128), audit_hook=False)
    return {"fill /work (64 MB tmpfs), then files": f"{r.stdout.strip()} | {r.summary()}"}


async def memory_cpu_wall() -> dict[str, str]:
    out = {}
    r = await run_python("x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n", limits=LIMITS, audit_hook=False)
    out["allocate until refused"] = r.summary(120)
    r = await run_python("while True:\n    pass\n", limits=SandboxLimits(wall_s=20, cpu_s=2), audit_hook=False)
    out["busy loop, cpu_s 2"] = r.summary(120)
    t0 = time.monotonic()
    r = await run_python("import time\ntime.sleep(3600)\n", limits=SandboxLimits(wall_s=3, cpu_s=2), audit_hook=False)
    out["sleep, wall_s 3"] = f"{r.summary(120)} after {time.monotonic() - t0:.1f} s"
    r = await run_python("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
                         limits=SandboxLimits(wall_s=20, cpu_s=2), audit_hook=False)
    out["SIGXCPU ignored, cpu_s 2"] = r.summary(120)
    return out


async def output_flood() -> dict[str, str]:
    """The gateway keeps reading after the cap: how much, and at what CPU cost to it."""
    out = {}
    for stream in ("stdout", "stderr"):
        code = f"import os\nb = b'x' * (1 << 16)\nwhile True:\n    os.write({1 if stream == 'stdout' else 2}, b)\n"
        t0, c0 = time.monotonic(), time.process_time()
        r = await run_python(code, limits=SandboxLimits(wall_s=10, cpu_s=60), audit_hook=False)
        out[f"{stream} flood, wall_s 10"] = (f"kept {len(r.stdout) + len(r.stderr):,} B, truncated={r.output_truncated}, "
                                            f"{r.summary(80)}; gateway CPU {time.process_time() - c0:.2f} s in "
                                            f"{time.monotonic() - t0:.1f} s")
    from tierwise.verifiers import checker
    answer = "import os\nb = b'x' * (1 << 16)\nwhile True:\n    os.write(2, b)\n"
    t0, c0 = time.monotonic(), time.process_time()
    chk = await checker.check(answer, "assert add(2, 3) == 5", SandboxLimits(wall_s=10, cpu_s=60))
    out["split check, the answer floods stderr, wall_s 10"] = (f"{chk.reason[:90]}; gateway CPU {time.process_time() - c0:.2f} s "
                                                               f"in {time.monotonic() - t0:.1f} s")
    return out


def _my_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children() -> list[str]:
    r = subprocess.run(["ps", "-o", "pid,stat,comm", "--ppid", str(os.getpid())], capture_output=True, text=True)
    return [ln for ln in r.stdout.splitlines()[1:] if "ps" not in ln]


def _bwraps() -> int:
    r = subprocess.run(["pgrep", "-c", "-x", "bwrap"], capture_output=True, text=True)
    return int(r.stdout.strip() or 0)


async def leaks_and_contamination() -> dict[str, str]:
    out = {}
    fds0, bw0 = _my_fds(), _bwraps()
    hostile = ["import time\ntime.sleep(60)\n", "while True: pass\n", "import os\nos.close(0); os.close(1); os.close(2)\n",
               "x = [bytearray(1 << 20) for _ in range(10_000)]\n", "import signal, os\nos.kill(0, signal.SIGSTOP)\n"]
    for i in range(20):
        await run_python(hostile[i % len(hostile)], limits=SandboxLimits(wall_s=2, cpu_s=1, memory_mb=128), audit_hook=False)
    out["gateway fds after 20 hostile runs"] = f"{fds0} -> {_my_fds()}"
    out["children / bwrap left after them"] = f"{_children()} / {bw0} -> {_bwraps()} bwrap processes"
    r1 = await run_python("open('/work/marker', 'w').write('run1')\nimport os\nprint(sorted(os.listdir('/work')))\n",
                          limits=LIMITS, audit_hook=False)
    r2 = await run_python("import os\nprint(sorted(os.listdir('/work')), os.path.exists('/work/marker'))\n",
                          limits=LIMITS, audit_hook=False)
    out["run N sees run N-1's files"] = f"run 1 {r1.stdout.strip()}; run 2 {r2.stdout.strip()}"
    # A SIGSTOPped sandbox: does the wall clock still end it?
    t0 = time.monotonic()
    r = await run_python("import signal\nsignal.raise_signal(signal.SIGSTOP)\n", limits=SandboxLimits(wall_s=3),
                         audit_hook=False)
    out["stops itself (SIGSTOP)"] = f"{r.summary(80)} after {time.monotonic() - t0:.1f} s"
    return out


async def root_owned_files() -> dict[str, str]:
    """uid 65534 inside maps to the gateway's uid outside: its owner-only files in a bound folder?"""
    with tempfile.TemporaryDirectory() as d:
        secret = os.path.join(d, "owner-only.txt")
        with open(secret, "w") as fh:
            fh.write("OWNER-ONLY")
        os.chmod(secret, 0o600)
        script = os.path.join(d, "read.py")
        with open(script, "w") as fh:
            fh.write(f"print(open({secret!r}).read())\n")
        os.chmod(d, 0o755)
        os.chmod(script, 0o644)
        r = await run_script(script, limits=LIMITS, ro_binds=[d], audit_hook=False)
    return {f"a 0600 file of uid {os.getuid()} in a bound folder": (r.stdout.strip() or r.stderr.strip()[-120:])}


WEAK = r'''
import os, resource, signal, stat
def t(name, fn):
    try:
        print(f"| weak: {name} | {fn()!r} |", flush=True)
    except OSError as e:
        print(f"| weak: {name} | refused: {e.strerror or e} |", flush=True)
gw = os.getppid()
t("mkfifo outside the folder", lambda: os.mkfifo(OUTSIDE + "/fifo"))
t("mknod of the disk's block device in the folder", lambda: os.mknod("disk", 0o600 | stat.S_IFBLK, RDEV))
t("open it", lambda: os.read(os.open(os.getcwd() + "/disk", os.O_RDONLY), 512)[:8])
# The soft limit only, so the bench can put it back (the hard limit, lowered, could not be raised
# again here: no CAP_SYS_RESOURCE in this container, so the gateway would keep 5 for its life).
t("prlimit(gateway, NOFILE, (5, its hard limit))", lambda: resource.prlimit(gw, resource.RLIMIT_NOFILE, (5, HARD)))
t("setpriority(gateway, 19)", lambda: os.setpriority(os.PRIO_PROCESS, gw, 19))
t("sched_setaffinity(gateway, {0})", lambda: os.sched_setaffinity(gw, {0}))
t("pidfd_send_signal(gateway, 0)", lambda: signal.pidfd_send_signal(os.pidfd_open(gw), 0))
def attach():
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute(f"ATTACH DATABASE '{OUTSIDE}/ledger.db' AS ledger")
    return db.execute("SELECT x FROM ledger.t").fetchall()
def history():
    import readline
    readline.add_history("written by the sandbox")
    readline.write_history_file(OUTSIDE + "/written.txt")
    return "written"
def native():
    import base64, importlib.machinery, importlib.util
    with open("reader.so", "wb") as fh:
        fh.write(base64.b64decode(NATIVE))
    loader = importlib.machinery.ExtensionFileLoader("reader", os.getcwd() + "/reader.so")
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("reader", loader))
    got = module.read(f"/proc/{gw}/environ")
    return f"read {len(got)} bytes of the gateway's environment; the bench's key in it: {b'sk-ROUND3' in got}"
try:
    t("a native extension written in the folder reads /proc/<gateway>/environ", native)
except PermissionError as e:
    print(f"| weak: a native extension written in the folder reads /proc/<gateway>/environ | refused: {e} |")
try:
    t("sqlite3 ATTACH of a database outside the folder", attach)
except PermissionError as e:
    print(f"| weak: sqlite3 ATTACH of a database outside the folder | refused: {e} |")
try:
    t("readline.write_history_file outside the folder", history)
except PermissionError as e:
    print(f"| weak: readline.write_history_file outside the folder | refused: {e} |")
'''


READER_C = r"""
#include <Python.h>
static PyObject *read_file(PyObject *self, PyObject *args) {
    const char *path; if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    FILE *f = fopen(path, "rb"); if (!f) return PyBytes_FromString("");
    char buf[65536]; size_t n = fread(buf, 1, sizeof buf, f); fclose(f);
    return PyBytes_FromStringAndSize(buf, n);
}
static PyMethodDef M[] = {{"read", read_file, METH_VARARGS, ""}, {0}};
static struct PyModuleDef D = {PyModuleDef_HEAD_INIT, "reader", 0, -1, M};
PyMODINIT_FUNC PyInit_reader(void) { return PyModule_Create(&D); }
"""


def _reader_extension() -> str:
    """A 16 KB extension that returns a file's bytes, base64 (what a model can put in its code)."""
    import base64
    import sysconfig
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "reader.c"), os.path.join(d, "reader.so")
        with open(src, "w") as fh:
            fh.write(READER_C)
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f"-I{sysconfig.get_paths()['include']}", src, "-o", out],
                       check=True)
        with open(out, "rb") as fh:
            return base64.b64encode(fh.read()).decode()


async def weak_sandbox() -> dict[str, str]:
    """The weak sandbox (no bubblewrap, `allow_weak`), hook on: what reaches the gateway's process."""
    from tierwise import sandbox
    from tierwise.sandbox import bwrap
    bwrap.bwrap_path = lambda: None
    status.cache_clear()
    sandbox.configure(allow_weak=True)
    disk = next((f"/dev/{n}" for n in sorted(os.listdir("/sys/block")) if not n.startswith(("loop", "ram", "zram"))), "/dev/null")
    before = (resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as outside:
        import sqlite3
        db = sqlite3.connect(os.path.join(outside, "ledger.db"))
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES ('LEDGER-ROW')")
        db.commit()
        db.close()
        os.environ.update(SECRET_ENV)
        code = (f"OUTSIDE = {outside!r}\nRDEV = {os.stat(disk).st_rdev}\nHARD = {before[0][1]}\n"
                f"NATIVE = {_reader_extension()!r}\n" + WEAK)
        r = await run_python(code, limits=LIMITS)
        fifo = os.path.exists(os.path.join(outside, "fifo"))
        written = os.path.exists(os.path.join(outside, "written.txt"))
        after = (resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0))
        resource.setrlimit(resource.RLIMIT_NOFILE, before[0])
        os.sched_setaffinity(0, before[2])
    print(r.stdout.strip())
    return {"weak: layers": repr(r.layers), "weak: FIFO left outside": repr(fifo), "weak: history file outside": repr(written),
            "weak: the gateway's (NOFILE, nice, CPUs) before -> after": f"{before} -> {after}"}


async def busy_gateway() -> dict[str, str]:
    """Runs started by a gateway that holds many descriptors (connections, files)."""
    out = {}
    for held in (0, 60, 100):
        fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(held)]
        ok, errors = 0, set()
        try:
            for _ in range(10):
                try:
                    ok += (await run_python("print(1)", limits=SandboxLimits(memory_mb=128))).ok
                except Exception as e:  # the run could not start
                    errors.add(type(e).__name__)
            out[f"10 runs with {_my_fds()} descriptors open in the gateway"] = f"{ok} ran {sorted(errors) or ''}"
        finally:
            for fd in fds:
                os.close(fd)
    return out


GROUPS = {"escapes": escapes, "network": network, "disk": disk_and_inodes, "memory_cpu_wall": memory_cpu_wall,
          "output": output_flood, "leaks": leaks_and_contamination, "owner_files": root_owned_files,
          "weak": weak_sandbox, "descriptors": busy_gateway}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=sorted(GROUPS))
    a = ap.parse_args()
    st = status()
    print(f"# {st.version}; layers: {', '.join(st.layers)}; RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}")
    for name, fn in GROUPS.items():
        if a.only and name != a.only:
            continue
        for attempt, outcome in (await fn()).items():
            print(f"| {attempt} | {outcome} |")


if __name__ == "__main__":
    asyncio.run(main())
