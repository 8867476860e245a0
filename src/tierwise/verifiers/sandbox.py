"""Run untrusted (model-written) Python in a contained subprocess.

Layers, each of which holds on its own for what it covers:

1. OS: a fresh process (`python -I -S`: no site-packages, no PYTHON* env, no cwd on sys.path)
   in a new session/process group, an empty environment, a throw-away working directory, and
   rlimits set before exec: CPU seconds, address space, processes, file size, open files, no
   core dumps. Where `unshare` works here (probed once), the child also gets its own network
   namespace (no interfaces but a down loopback: no network at all) and its own PID namespace
   (killing its init kills every descendant). When tierwise runs as root and the interpreter
   is reachable by `nobody`, the child drops to `nobody` too (root is exempt from RLIMIT_NPROC).
2. Interpreter: an audit hook (PEP 578), installed before the user code runs, that refuses
   sockets, process creation (fork, exec, spawn, subprocess, os.system), ctypes, signals to
   other processes, introspection of the garbage collector (the way to reach the hook's own
   state), file opens outside the temp dir (the standard library stays readable so imports
   work) and every filesystem change outside it.
3. Supervisor: a wall-clock timeout that kills the whole process group, and caps on captured
   output so a flood of prints cannot exhaust the gateway's memory.

Audit hooks are not a security boundary by themselves (CPython says so); the OS layer is why
the sandbox still holds if the hook were bypassed for CPU, memory, wall time and network.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

NOBODY_UID = 65534


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    max_processes: int = 16
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 256_000


@dataclass(slots=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    # Signal name when the child was killed by a signal (SIGXCPU: CPU limit, SIGKILL: wall or hard limit).
    signal: str | None = None
    output_truncated: bool = False
    # The isolation layers that were in force, for the trace ("netns", "pidns", "nobody", "audit").
    layers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def summary(self, limit: int = 600) -> str:
        """One short line for a verdict reason: why it failed, with the tail of stderr."""
        if self.timed_out:
            return "timed out (wall-clock limit)"
        if self.signal == "SIGXCPU":
            return "killed: CPU time limit"
        if self.signal:
            return f"killed by {self.signal}"
        tail = self.stderr.strip().splitlines()[-3:]
        text = " | ".join(tail) if tail else f"exit status {self.returncode}"
        return text[-limit:]


# The bootstrap runs as `python -I -S -c BOOT <workdir> <script>`: it installs the audit hook,
# then runs the user's script as __main__. Everything is defined inside a function so the
# user code cannot reach the hook's state through module globals.
_BOOT = r'''
def _tierwise_sandbox(root, script):
    import os, sys
    root = os.path.realpath(root)
    readable = tuple(sorted({os.path.realpath(p) for p in sys.path if p and os.path.exists(p)}
                            | {os.path.realpath(os.path.dirname(os.__file__))}))
    sep = os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    banned = frozenset({
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.popen",
        "subprocess.Popen", "os.kill", "os.killpg", "pty.spawn", "os.setuid", "os.setgid",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook",
        "webbrowser.open", "os.add_dll_directory", "sys.setprofile", "sys.settrace",
    })
    # subprocess itself stays importable (asyncio needs it); creating a process is refused above.
    banned_modules = frozenset({"ctypes", "_ctypes"})
    mutating = frozenset({
        "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
        "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod", "shutil.rmtree", "shutil.copyfile",
        "shutil.copymode", "shutil.copystat", "shutil.move", "shutil.chown", "shutil.make_archive",
        "shutil.unpack_archive", "os.setxattr", "os.removexattr",
    })
    two_paths = frozenset({"os.rename", "os.link", "os.symlink"})
    listing = frozenset({"os.listdir", "os.scandir", "glob.glob", "glob.glob/2", "os.chdir",
                         "os.getxattr", "os.listxattr"})
    busy = [False]

    def inside(path, roots):
        if isinstance(path, int):
            return True
        if path is None:
            path = "."
        p = os.path.realpath(os.fsdecode(path))
        return any(p == r or p.startswith(r if r.endswith(sep) else r + sep) for r in roots)

    def deny(event, what=""):
        raise PermissionError(f"sandbox: {event} {what}".strip() + " is not allowed")

    def hook(event, args):
        if busy[0]:
            return
        busy[0] = True
        try:
            if event in banned or event.startswith("socket.") or event.startswith("ctypes."):
                deny(event)
            elif event == "import":
                if args[0].partition(".")[0] in banned_modules:
                    deny("import", repr(args[0]))
            elif event == "open":
                path, mode, flags = args
                writes = bool(flags & write_flags) if isinstance(flags, int) else any(c in (mode or "") for c in "wax+")
                if not inside(path, (root,)) and (writes or not inside(path, readable)):
                    deny("open", repr(os.fsdecode(path)) if not isinstance(path, int) else "")
            elif event in listing:
                if args and not inside(args[0], (root,) + (() if event == "os.chdir" else readable)):
                    deny(event, repr(args[0]))
            elif event in mutating:
                if args and not inside(args[0], (root,)):
                    deny(event, repr(args[0]))
            elif event in two_paths:
                if not all(inside(a, (root,)) for a in args[:2]):
                    deny(event)
        finally:
            busy[0] = False

    import signal

    def out_of_cpu(signum, frame):
        # The soft CPU limit: say so (a bare signal death is ambiguous through unshare) and stop.
        os.write(2, b"\nsandbox: CPU time limit exceeded\n")
        os._exit(128 + signal.SIGXCPU)

    signal.signal(signal.SIGXCPU, out_of_cpu)
    sys.path.insert(0, root)
    import runpy
    sys.addaudithook(hook)
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")

import sys as _sys
_args = _sys.argv[1:3]
del _sys
_tierwise_sandbox(*_args)
'''


@dataclass(frozen=True, slots=True)
class _Isolation:
    unshare_args: tuple[str, ...]
    drop_to: int | None
    layers: tuple[str, ...]
    python: str


def _interpreter() -> str:
    """The real interpreter file (not a venv symlink): the child must not depend on the venv."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _probe(cmd: list[str], drop_to: int | None) -> bool:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=10, cwd="/",
                           preexec_fn=(functools.partial(_drop_privileges, drop_to) if drop_to is not None else None))
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


@functools.cache
def _isolation() -> _Isolation:
    """Find, once per process, the strongest isolation this machine allows without configuration."""
    python = _interpreter()
    layers: list[str] = ["rlimits", "audit"]
    drop_to: int | None = None
    if os.geteuid() == 0:
        # Our own interpreter may sit where `nobody` cannot reach it (pyenv under /root); a system
        # interpreter of the same version runs the child's standard-library-only code just as well.
        for candidate in _interpreters_for_nobody(python):
            if _probe([candidate, "-I", "-S", "-c", "pass"], NOBODY_UID):
                python, drop_to = candidate, NOBODY_UID
                layers.append("nobody")
                break
    unshare = shutil.which("unshare")
    unshare_args: tuple[str, ...] = ()
    if unshare:
        user_ns: tuple[str, ...] = () if os.geteuid() == 0 and drop_to is None else ("-r",)
        extra: tuple[str, ...]
        for extra, names in ((("--pid", "--fork", "--kill-child"), ["netns", "pidns"]), ((), ["netns"])):
            prefix = (unshare, *user_ns, "-n", *extra)
            if _probe([*prefix, python, "-I", "-S", "-c", "pass"], drop_to):
                unshare_args = prefix
                layers.extend(names)
                break
    return _Isolation(unshare_args, drop_to, tuple(layers), python)


def _interpreters_for_nobody(own: str) -> list[str]:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = [own]
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        path = os.path.join(directory, version)
        if os.access(path, os.X_OK):
            real = os.path.realpath(path)
            if real not in found:
                found.append(real)
    return found


def _drop_privileges(uid: int | None) -> None:
    if uid is None:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _user_process_count(uid: int) -> int:
    """Processes `uid` already owns: RLIMIT_NPROC counts them all, so the limit is relative to it."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        count += 1
    return count


def _limit_child(limits: SandboxLimits, nproc: int, drop_to: int | None) -> None:
    """Runs in the child between fork and exec: only async-signal-safe-ish, allocation-light work."""
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    _drop_privileges(drop_to)


async def _read_capped(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    """Read until EOF keeping at most `cap` bytes (keeps draining so the child never blocks on a full pipe)."""
    if stream is None:
        return b"", False
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return bytes(kept), truncated


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_python(code: str, *, files: dict[str, str] | None = None, stdin: str | None = None,
                     limits: SandboxLimits | None = None, audit_hook: bool = True) -> SandboxResult:
    """Run `code` as the main script of a sandboxed interpreter; `files` are extra files beside it.

    `audit_hook=False` leaves only the OS layer: for tests that show it holds on its own.

    Never raises for anything the code does; raises OSError only if no process could be started.
    """
    limits = limits or SandboxLimits()
    iso = await asyncio.to_thread(_isolation)  # probes run subprocesses once: keep them off the loop
    workdir = tempfile.mkdtemp(prefix="tierwise-sandbox-")
    try:
        for name, text in {**(files or {}), "main.py": code}.items():
            if os.sep in name or name.startswith("."):
                raise ValueError(f"sandbox file names must be plain names, got {name!r}")
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        if iso.drop_to is not None:
            os.chown(workdir, iso.drop_to, iso.drop_to)
            for name in os.listdir(workdir):
                os.chown(os.path.join(workdir, name), iso.drop_to, iso.drop_to)
        owner = iso.drop_to if iso.drop_to is not None else os.geteuid()
        # The supervisor (unshare) and the interpreter are processes too.
        nproc = _user_process_count(owner) + limits.max_processes + 2
        main = os.path.join(workdir, "main.py")
        boot = ["-c", _BOOT, workdir, main] if audit_hook else [main]
        argv = [*iso.unshare_args, iso.python, "-I", "-S", *boot]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env={},
            start_new_session=True,
            preexec_fn=functools.partial(_limit_child, limits, nproc, iso.drop_to),
        )
        layers = [x for x in iso.layers if audit_hook or x != "audit"]
        return await _supervise(proc, stdin, limits, layers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _supervise(proc: asyncio.subprocess.Process, stdin: str | None, limits: SandboxLimits,
                     layers: list[str]) -> SandboxResult:
    if stdin is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin.encode())
            await proc.stdin.drain()
            proc.stdin.close()
    readers = asyncio.gather(_read_capped(proc.stdout, limits.output_bytes),
                             _read_capped(proc.stderr, limits.output_bytes))
    timed_out = False
    try:
        (out, out_cut), (err, err_cut) = await asyncio.wait_for(asyncio.shield(readers), limits.wall_s)
        await asyncio.wait_for(proc.wait(), max(1.0, limits.wall_s))
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        (out, out_cut), (err, err_cut) = await readers
        await proc.wait()
    finally:
        # Descendants that outlived the main process (they cannot, with a PID namespace) go too.
        _kill_group(proc.pid)
    rc = proc.returncode
    sig = None
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc).name
    elif rc is not None and rc > 128 and rc - 128 in signal.valid_signals():
        sig = signal.Signals(rc - 128).name  # reported by unshare's supervisor
    return SandboxResult(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), timed_out,
                         sig, out_cut or err_cut, layers)
