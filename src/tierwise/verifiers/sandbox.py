"""Run untrusted (model-written) Python in a contained subprocess.

Layers, each of which holds on its own for what it covers:

1. OS: a fresh process (`python -I -S`: no site-packages, no PYTHON* env, no cwd on sys.path)
   in a new session/process group, an empty environment, a throw-away working directory, and
   rlimits set before exec: CPU seconds, address space, processes, file size, open files, no
   core dumps. Where `unshare` works here (probed once), the child also gets its own network
   namespace (no interfaces but a down loopback: no network at all) and its own PID namespace
   (killing its init kills every descendant). When tierwise runs as root and the interpreter
   is reachable by `nobody`, the child drops to `nobody` too (root is exempt from RLIMIT_NPROC).
   Where `unshare` can also make a mount namespace, the child runs in a filesystem jail: its
   root is an empty read-only tmpfs holding only the interpreter, its standard library, the
   system's shared libraries and time zones (read-only) and its own folder (read-write). Home
   folders, /etc, /proc, the gateway's config and ledger and other runs' folders do not exist
   for it, whoever owns them.
2. Interpreter: an audit hook (PEP 578), installed before the user code runs, that refuses
   sockets, process creation (fork, exec, spawn, subprocess, os.system), ctypes, signals to
   other processes, introspection of the garbage collector (the way to reach the hook's own
   state), file opens outside the temp dir (the standard library stays readable so imports
   work) and every filesystem change outside it. Its state is unreachable from the user's frames
   (it lives only in the hook's closure, with every function it calls bound before user code
   runs), and it never calls a method of a user object, so user code never runs inside it.
3. Supervisor: a wall-clock timeout that kills the whole process group, and caps on captured
   output so a flood of prints cannot exhaust the gateway's memory.

Audit hooks are not a security boundary by themselves (CPython says so); the OS layer is why
the sandbox still holds if the hook were bypassed for CPU, memory, wall time, network and, where
the jail is built, files. `SandboxResult.layers` says which layers were in force for a run.
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
    # The isolation layers that were in force, for the trace ("netns", "pidns", "nobody", "fsjail", "audit").
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
# then runs the user's script as __main__ from module level, after the installer has returned
# and been deleted, so neither the module globals nor any frame below the user's code hold the
# hook's state.
_BOOT = r'''
def _tierwise_install(root, script):
    # Installs the hook and returns before the script runs, so no frame under the user's code
    # holds the hook's state: it lives only in the closure cells of `hook`, which nothing else
    # refers to (and gc introspection, the one way to find it, is refused).
    import os, runpy, signal, sys
    root = os.path.realpath(root)
    readable = {os.path.realpath(p) for p in sys.path if p and os.path.exists(p)}
    readable.add(os.path.realpath(os.path.dirname(os.__file__)))
    # Allowed folders as prefixes ending in "/": a resolved path P is inside when P + "/" starts with one.
    mine = (root.rstrip("/") + "/",)
    seen = mine + tuple(sorted(r.rstrip("/") + "/" for r in readable))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    write_modes = frozenset("wax+")
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
    # Everything the hook calls is bound here, before user code runs: the user can rebind os.*,
    # posixpath.* and builtins.* but not these. The hook never calls a method of a user object
    # (a str subclass's, an __fspath__, an int's __and__): str and bytes subclasses are copied to
    # exact ones through the base type, anything else is not a path it can check.
    getcwd, readlink, Denied, NotALink = os.getcwd, os.readlink, PermissionError, OSError
    type_, subclass, str_, bytes_, int_ = type, issubclass, str, bytes, int
    copy_str, copy_bytes, partition, and_int = str.__getitem__, bytes.__getitem__, str.partition, int.__and__
    whole, decode, fsenc, fserr = slice(None), bytes.decode, sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    decode(b"", fsenc, fserr)  # caches the codec: no codec search function ever runs in the hook

    # No re-entrancy flag: nothing the hook calls raises audit events, and a flag would be state
    # worth reaching (and a window for other threads and signal handlers while it is set).
    def hook(event, args):
        if event in banned or event.startswith(("socket.", "ctypes.")):
            raise Denied(f"sandbox: {event} is not allowed")
        if event == "import":
            name = args[0]
            if subclass(type_(name), str_) and partition(copy_str(name, whole), ".")[0] in banned_modules:
                raise Denied(f"sandbox: import {copy_str(name, whole)!r} is not allowed")
            return
        if event == "open":
            path, mode, flags = args
            if subclass(type_(flags), int_):
                writes = and_int(flags, write_flags) != 0
            else:
                writes = not subclass(type_(mode), str_) or not write_modes.isdisjoint(copy_str(mode, whole))
            paths, allowed = (path,), (mine if writes else seen)
        elif event in listing:
            paths, allowed = args[:1], (mine if event == "os.chdir" else seen)
        elif event in mutating:
            paths, allowed = args[:1], mine
        elif event in two_paths:
            paths, allowed = args[:2], mine
        else:
            return
        for path in paths:
            kind = type_(path)
            if path is None:
                path = "."
            elif subclass(kind, int_):
                continue  # a file descriptor
            elif subclass(kind, str_):
                path = copy_str(path, whole)
            elif subclass(kind, bytes_):
                path = decode(copy_bytes(path, whole), fsenc, fserr)
            else:
                # CPython's own path functions pass os.PathLike arguments here already converted;
                # calling __fspath__ ourselves would run user code inside the hook.
                raise Denied(f"sandbox: {event} of a path that is not str or bytes is not allowed")
            # realpath over the bound functions: resolve each symlink as the kernel will.
            todo = (path if path.startswith("/") else getcwd() + "/" + path).split("/")[::-1]
            real, hops = "", 0
            while todo:
                name = todo.pop()
                if name == "..":
                    real = real.rpartition("/")[0]
                elif name and name != ".":
                    try:
                        target = readlink(real + "/" + name)
                    except NotALink:  # (or missing: the kernel's own lookup fails on it too)
                        real = real + "/" + name
                        continue
                    hops += 1
                    if hops > 40:  # the kernel's own limit (ELOOP)
                        raise Denied(f"sandbox: {event} {path!r}: too many symbolic links")
                    if target.startswith("/"):
                        real = ""
                    todo += target.split("/")[::-1]
            if not (real + "/").startswith(allowed):
                raise Denied(f"sandbox: {event} {path!r} is not allowed")

    def out_of_cpu(signum, frame):
        # The soft CPU limit: say so (a bare signal death is ambiguous through unshare) and stop.
        os.write(2, b"\nsandbox: CPU time limit exceeded\n")
        os._exit(128 + signal.SIGXCPU)

    signal.signal(signal.SIGXCPU, out_of_cpu)
    sys.path.insert(0, root)
    sys.argv = [script]
    sys.addaudithook(hook)

# The script runs from module level once the installer has returned, with no name of ours left.
_tierwise_install(*__import__("sys").argv[1:3])
del _tierwise_install
__import__("runpy").run_path(__import__("sys").argv[0], run_name="__main__")
'''


@dataclass(frozen=True, slots=True)
class _Isolation:
    unshare_args: tuple[str, ...]
    drop_to: int | None
    layers: tuple[str, ...]
    python: str
    # The filesystem jail: `unshare` and its namespace options, and the read-only paths it shows
    # the child (empty: no jail on this machine).
    jail_args: tuple[str, ...] = ()
    jail_binds: tuple[str, ...] = ()


# The filesystem jail, run as `sh -c JAIL_SH jail <root> <workdir> <bind>... -- <command>...` in a
# fresh mount namespace: an empty tmpfs becomes the root, the interpreter, its lib/ folder and the
# system's library folders are bound into it read-only, the run's own folder read-write, and the command is
# started chrooted there. The rest of the machine (home folders, the gateway's config and ledger,
# other runs' folders, /etc, /proc) does not exist for the child. Nothing here runs untrusted code.
_JAIL_SH = r"""set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin
J=$1; W=$2; shift 2
mount -t tmpfs -o size=1m,mode=755,nosuid,nodev tierwise-jail "$J"
while [ "$1" != -- ]; do
  p=$1; shift
  if [ -L "$p" ]; then
    mkdir -p "$J${p%/*}"; ln -s "$(readlink "$p")" "$J$p"; continue
  elif [ -d "$p" ]; then
    mkdir -p "$J$p"
  else
    mkdir -p "$J${p%/*}"; : > "$J$p"
  fi
  mount --bind -o ro,nosuid,nodev "$p" "$J$p"
done
shift
mkdir -p "$J$W"; mount --bind -o nosuid,nodev "$W" "$J$W"
mount -o remount,bind,ro,nosuid,nodev "$J"
unset PWD OLDPWD
exec "$@"
"""
# What an interpreter needs to start and import its standard library: the shared libraries and
# the loader's cache, time zones (the interpreter file and its prefix's lib/ are added). Not /usr
# whole: /usr/src or /usr/local may hold an application and its data.
_SYSTEM_PATHS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/usr/local/lib", "/lib", "/lib64",
                 "/lib32", "/libx32", "/etc/ld.so.cache", "/usr/share/zoneinfo", "/nix/store")


def _interpreter() -> str:
    """The real interpreter file (not a venv symlink): the child must not depend on the venv."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _probe(cmd: list[str], drop_to: int | None, cwd: str = "/") -> bool:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=10, cwd=cwd,
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
    binds: tuple[str, ...] = ()
    jail_args: tuple[str, ...] = ()
    if unshare:
        user_ns: tuple[str, ...] = () if os.geteuid() == 0 and drop_to is None else ("-r",)
        extra: tuple[str, ...]
        for extra, names in ((("--pid", "--fork", "--kill-child"), ["netns", "pidns"]), ((), ["netns"])):
            prefix = (unshare, *user_ns, "-n", *extra)
            if _probe([*prefix, python, "-I", "-S", "-c", "pass"], drop_to):
                unshare_args = prefix
                layers.extend(names)
                break
        jail_args = (unshare, *(unshare_args[1:] or user_ns))
        binds = _jail_binds(jail_args, python, drop_to)
        if binds:
            layers.append("fsjail")
    return _Isolation(unshare_args, drop_to, tuple(layers), python, jail_args if binds else (), binds)


def _jail_binds(jail_args: tuple[str, ...], python: str, drop_to: int | None) -> tuple[str, ...]:
    """The paths to show inside the jail, or () where a jail cannot be built or would not start Python."""
    if not os.path.exists("/bin/sh"):
        return ()
    try:
        prefixes = subprocess.run([python, "-I", "-S", "-c", "import sys; print(sys.base_prefix); print(sys.base_exec_prefix)"],
                                  capture_output=True, text=True, timeout=10, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return ()
    candidates = [*_SYSTEM_PATHS, *(os.path.join(p, "lib") for p in prefixes), python]
    links, dirs = [], []
    for path in candidates:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            links.append(path)  # /lib -> usr/lib on merged-/usr systems: recreated as the same link
        elif os.path.exists(path):
            dirs.append(os.path.realpath(path))
    dirs = sorted(set(dirs))
    # One bind per tree: a path inside another bound path comes with it.
    dirs = [d for d in dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in dirs)]
    # A bound folder that is / or holds the home folder or the gateway's own folder (a gateway run
    # from inside /usr/lib) would bring in what the jail is for hiding: no jail then.
    private = {os.path.realpath(os.path.expanduser("~")), os.path.realpath(os.getcwd())}
    if "/" in dirs or any(p == d or p.startswith(d + "/") for p in private for d in dirs):
        return ()
    binds = (*dirs, *sorted(set(links)))
    check = "import json, decimal, hashlib, math, os; assert not os.path.exists('/etc/passwd')"
    run, work, root = _run_folders(drop_to)
    try:
        cmd = _jail_command(jail_args, binds, root, work, [python, "-I", "-S", "-c", check])
        return binds if _probe(cmd, drop_to, cwd=work) else ()
    finally:
        shutil.rmtree(run, ignore_errors=True)


def _run_folders(owner: int | None) -> tuple[str, str, str]:
    """A fresh folder per run holding `work` (the code's own folder) and `root` (the jail's mount point)."""
    run = tempfile.mkdtemp(prefix="tierwise-sandbox-")
    work, root = os.path.join(run, "work"), os.path.join(run, "root")
    os.mkdir(work)
    os.mkdir(root)
    if owner is not None:
        for d in (run, work, root):
            os.chown(d, owner, owner)
    return run, work, root


def _jail_command(jail_args: tuple[str, ...], binds: tuple[str, ...], root: str, work: str,
                  command: list[str]) -> list[str]:
    return [*jail_args, "-m", "/bin/sh", "-c", _JAIL_SH, "tierwise-jail", root, work, *binds, "--",
            jail_args[0], f"--root={root}", f"--wd={work}", *command]


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
    run, workdir, root = _run_folders(iso.drop_to)
    try:
        for name, text in {**(files or {}), "main.py": code}.items():
            if os.sep in name or name.startswith("."):
                raise ValueError(f"sandbox file names must be plain names, got {name!r}")
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        if iso.drop_to is not None:
            for name in os.listdir(workdir):
                os.chown(os.path.join(workdir, name), iso.drop_to, iso.drop_to)
        owner = iso.drop_to if iso.drop_to is not None else os.geteuid()
        # The supervisor (unshare) and the interpreter are processes too.
        nproc = _user_process_count(owner) + limits.max_processes + 2
        main = os.path.join(workdir, "main.py")
        boot = ["-c", _BOOT, workdir, main] if audit_hook else [main]
        argv = [iso.python, "-I", "-S", *boot]
        argv = _jail_command(iso.jail_args, iso.jail_binds, root, workdir, argv) if iso.jail_binds \
            else [*iso.unshare_args, *argv]
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
        shutil.rmtree(run, ignore_errors=True)


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
