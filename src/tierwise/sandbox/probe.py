"""Which layers are really in force: a probe run once per process (and per kind of run) inside a
sandbox built exactly as the real runs are, with no audit hook, trying what each layer must stop.
`SandboxResult.layers` lists only what this probe saw hold; a layer it could not check is not
claimed. Namespaces are compared from outside (bwrap's --info-fd against our own)."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import subprocess
from collections.abc import Callable

from tierwise.sandbox import bwrap, identity, seccomp_filter
from tierwise.sandbox.limits import SandboxLimits

# Runs inside the sandbox as the main script, and prints one JSON line.
PROBE = r'''
import ctypes, json, os, resource, socket
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def err(fn):
    try:
        fn()
        return 0
    except OSError as e:
        return e.errno
def cerr(rc):
    return ctypes.get_errno() if rc != 0 else 0
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
class Hdr(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("eff", ctypes.c_uint32), ("perm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]
data = (Data * 2)()
libc.capget(ctypes.byref(Hdr(0x20080522, 0)), data)
out["caps"] = [d.eff | d.perm | d.inh for d in data] + [max(0, libc.prctl(23, c, 0, 0, 0)) for c in range(64)]
out["uid"], out["gid"] = os.getuid(), os.getgid()
out["no_new_privs"] = libc.prctl(39, 0, 0, 0, 0)
out["chroot"] = err(lambda: os.chroot("/"))
out["socket_inet"] = err(lambda: socket.socket(socket.AF_INET).close())
out["socket_unix"] = err(lambda: socket.socket(socket.AF_UNIX).close())
out["socketpair"] = err(lambda: [s.close() for s in socket.socketpair()])
out["unshare"] = cerr(libc.unshare(0x10000000))
out["mount"] = cerr(libc.mount(b"none", b"/work", b"tmpfs", 0, None))
out["fork"] = err(fork)
def thread():
    import _thread
    try:
        _thread.start_new_thread(int, ())
    except RuntimeError:  # "can't start new thread": pthread_create failed
        raise PermissionError(1, "no thread") from None
out["thread"] = err(thread)
sid = libc.shmget(0, 4096, 0o1600)
out["shmget"] = ctypes.get_errno() if sid < 0 else 0
out["memfd"] = err(lambda: os.close(os.memfd_create("probe")))
out["setxattr"] = err(lambda: os.setxattr("/work/probe.py", "user.probe", b"x"))
def grow_buffer():
    a, b = socket.socketpair()
    try:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 24)
    finally:
        a.close(), b.close()
out["sndbuf"] = err(grow_buffer)
class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]
r, w = os.pipe()
out["vmsplice"] = ctypes.get_errno() if libc.vmsplice(w, ctypes.byref(Iov(b"x", 1)), 1, 0) < 0 else 0
os.close(r), os.close(w)
out["root"] = sorted(os.listdir("/"))
out["dev"] = sorted(os.listdir("/dev")) if os.path.isdir("/dev") else []
out["rlimit_as"] = resource.getrlimit(resource.RLIMIT_AS)[0]
out["rlimit_cpu"] = resource.getrlimit(resource.RLIMIT_CPU)[0]
print(json.dumps(out))
'''
NAMESPACES = {"mnt": "mntns", "net": "netns", "pid": "pidns", "ipc": "ipcns", "uts": "utsns"}
# What the root of the sandbox may hold: the library folders, the run's folder, the folders
# leading to the interpreter, and its /dev of the host's null, zero, full, random and urandom (bwrap.DEVICES) and its own shm.
_ALLOWED_TOP = {"usr", "lib", "lib64", "lib32", "libx32", "nix", "work", "dev"}


def _child(switch: tuple | None, preexec: Callable[[SandboxLimits], None], limits: SandboxLimits) -> None:
    identity.switch(switch)
    preexec(limits)


def probe(preexec: Callable[[SandboxLimits], None],
          user: identity.User | None = None) -> tuple[tuple[str, ...], str | None]:
    """(layers verified, what failed) for sandbox runs (as `user` outside, when given)."""
    limits = SandboxLimits(memory_mb=256)
    lay = bwrap.layout()
    switch = identity.switcher(user, identity.plan(lay.binds, user))
    tops = _ALLOWED_TOP | {p.split("/")[1] for p in lay.binds}
    fds: list[int] = []
    try:
        script, info_fd = os.memfd_create("probe", os.MFD_CLOEXEC), os.memfd_create("info", os.MFD_CLOEXEC)
        fds += [script, info_fd]
        os.write(script, PROBE.encode())
        os.lseek(script, 0, os.SEEK_SET)
        fds.append(seccomp_filter.bpf_fd())
        cmd = bwrap.command(seccomp_fd=fds[2], files=[(script, "probe.py")], work_mb=1, info_fd=info_fd,
                            argv=[lay.python, "-I", "-S", f"{bwrap.WORK}/probe.py"])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env={}, cwd="/", pass_fds=fds,
                           preexec_fn=functools.partial(_child, switch, preexec, limits))
        os.lseek(info_fd, 0, os.SEEK_SET)
        info = json.loads(os.read(info_fd, 1 << 16) or b"{}")
    except (OSError, subprocess.SubprocessError, ValueError, ImportError) as e:
        return (), f"bubblewrap or libseccomp could not run: {e}"
    finally:
        for fd in fds:
            os.close(fd)
    try:
        seen = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return (), f"the probe did not run in bubblewrap (exit {r.returncode}): {r.stderr.strip()[-300:]}"
    layers = ["bwrap"]
    for ns, name in NAMESPACES.items():
        with contextlib.suppress(OSError, KeyError):
            if info[f"{ns}-namespace"] != os.stat(f"/proc/self/ns/{ns}").st_ino:
                layers.append(name)
    if set(seen["root"]) <= tops and "work" in seen["root"] and set(seen.get("dev", ())) <= {*bwrap.DEVICES, "shm"}:
        layers.append("fsroot")  # pivot_root into a root of library folders and the run's own folder
    if (seen["uid"], seen["gid"]) == (bwrap.UID, bwrap.UID):
        layers.append("userns")  # uid 65534 in its own user namespace
    if not any(seen["caps"]):
        layers.append("no_caps")
    if seen["no_new_privs"] == 1:
        layers.append("no_new_privs")
    # socket() and socket(AF_UNIX) work in any network namespace: EPERM there is the filter's.
    if all(seen[k] == errno.EPERM for k in ("chroot", "socket_inet", "socket_unix", "unshare", "mount")) \
            and seen["socketpair"] == 0:
        layers.append("seccomp")
    if seen["fork"] == errno.EPERM and "seccomp" in layers:
        layers.append("one_process")
        if seen["thread"] == errno.EPERM:
            layers.append("one_task")  # no thread either: one PID, one kernel stack
    if seen["rlimit_as"] == limits.memory_mb * 1024 * 1024 and seen["rlimit_cpu"] == limits.cpu_s:
        layers.append("rlimits")
        # One process (threads share its address space) that can keep no memory outside it (SysV
        # shared memory, memfds, socket buffers grown past the default, pages pinned in pipes by
        # vmsplice, extended attributes on tmpfs): RLIMIT_AS bounds the run's memory in total.
        if "one_process" in layers and seen["shmget"] == seen["memfd"] == seen["sndbuf"] == seen["vmsplice"] \
                == seen["setxattr"] == errno.EPERM:
            layers.append("memory_total")
    need = {"mntns", "netns", "pidns", "fsroot", "userns", "no_caps", "no_new_privs", "seccomp", "one_process",
            "one_task", "rlimits", "memory_total"}
    missing = sorted(need - set(layers))
    return tuple(layers), (f"layers not in force: {', '.join(missing)}" if missing else None)
