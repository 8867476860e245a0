"""The code sandbox holds, tried as an attacker would: escapes from the filesystem (chroot, dir_fd,
the host's paths), the network (host UNIX sockets, loopback TCP), processes (fork, ctypes,
_posixsubprocess), memory, CPU, wall time and output; other runs cannot be reached; and ordinary
code still runs. The OS layer is tried with the audit hook off too: it must hold alone."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Callable, Iterator

import pytest

from tests.harness import unavailable
from tests.verifiers.kernel_memory_attacks import KERNEL_BUFFERS, PINNED_PAGES, RAW_THREADS
from tierwise.sandbox import SandboxLimits, run_python, run_script, status
from tierwise.sandbox.bwrap import layout

FAST = SandboxLimits(wall_s=20, cpu_s=2, memory_mb=256)
BOTH = pytest.mark.parametrize("audit_hook", [True, False], ids=["hook", "os-only"])


def need_layer(layer: str, why: str) -> None:
    """Skip where this machine cannot give `layer`; in CI a missing layer is a failure, not a skip."""
    if layer in status().layers:
        return
    unavailable(f"sandbox layer {layer!r} is missing: {why} ({status().problem})")


@pytest.fixture(autouse=True)
def strong_sandbox() -> None:
    need_layer("seccomp", "bubblewrap with seccomp is not available here: install it with scripts/install-sandbox.sh")


async def test_normal_code_runs_and_sees_its_files() -> None:
    code = ("import json, collections, asyncio, threading, decimal, sqlite3, hashlib, zoneinfo\n"
            "from helper import VALUE\nprint(collections.Counter('aab').most_common(1)[0][0])\n"
            "print(json.dumps({'v': VALUE}))\n")
    r = await run_python(code, files={"helper.py": "VALUE = 42\n"}, limits=FAST)
    assert r.ok, r.stderr
    assert r.stdout.split("\n")[:2] == ["a", '{"v": 42}']


async def test_code_may_write_inside_its_own_folder() -> None:
    code = ("import os, tempfile\nopen('out.txt', 'w').write('hello')\n"
            "with tempfile.NamedTemporaryFile(dir='.') as f: f.write(b'x')\n"
            "print(open('out.txt').read(), sorted(os.listdir('.')), os.getcwd())\n")
    r = await run_python(code, limits=FAST)
    assert r.ok, r.stderr
    assert r.stdout.split() == ["hello", "['main.py',", "'out.txt']", "/work"]


async def test_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERWISE_TEST_SECRET", "sk-should-not-leak")
    r = await run_python("import os\nprint(sorted(os.environ))\n", limits=FAST, audit_hook=False)
    assert r.ok, r.stderr
    assert "sk-should-not-leak" not in r.stdout
    # Nothing but what the interpreter sets itself (C locale coercion) and bwrap's working directory.
    # (and one malloc arena, session 36: bwrap.ENVIRONMENT; a home and a user name, session 37)
    assert set(eval(r.stdout)) <= {"LC_CTYPE", "PWD", "MALLOC_ARENA_MAX", "USER", "LOGNAME", "HOME"}, \
        r.stdout  # noqa: S307 - our own printed list


# ------------------------------------------------------------------ filesystem

CHROOT_ESCAPE = """
import os
os.mkdir('jail')
try:
    os.chroot('jail')
    print('CHROOTED')
    for _ in range(64):
        os.chdir('..')
    os.chroot('.')
except OSError as e:
    print('chroot refused', e.errno)
for p in ('/etc/passwd', '/etc/shadow', '/root/.bash_history'):
    try:
        print('READ', p, open(p).read()[:40])
    except OSError as e:
        print('no', p, type(e).__name__)
"""


@BOTH
async def test_chroot_escape_fails(audit_hook: bool) -> None:
    r = await run_python(CHROOT_ESCAPE, limits=FAST, audit_hook=audit_hook)
    assert "CHROOTED" not in r.stdout and "READ" not in r.stdout, r.stdout
    assert "root:" not in r.stdout + r.stderr
    if not audit_hook:
        assert "chroot refused 1" in r.stdout  # EPERM from seccomp (no capability either)


DIR_FD = """
import os
seen = {}
for start in ('/', '..', '/work/..', '/proc', '/dev', '/sys'):
    try:
        fd = os.open(start, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        seen[start] = type(e).__name__
        continue
    for target in ('etc/passwd', '../../etc/passwd', 'root', 'home', 'var/run/postgresql', 'proc/1/environ'):
        try:
            f = os.open(target, os.O_RDONLY, dir_fd=fd)
            seen[start + ' ' + target] = os.read(f, 60).decode(errors='replace')
        except OSError as e:
            seen[start + ' ' + target] = type(e).__name__
print(repr(seen))
print('ROOT', sorted(os.listdir('/')))
print('DEV', sorted(os.listdir('/dev')) if os.path.isdir('/dev') else [])
"""


@BOTH
async def test_open_with_dir_fd_outside_reaches_nothing(audit_hook: bool) -> None:
    r = await run_python(DIR_FD, limits=FAST, audit_hook=audit_hook)
    assert "root:x" not in r.stdout and ".s.PGSQL" not in r.stdout, r.stdout
    if not audit_hook:
        seen = eval(r.stdout.split("\n")[0])  # noqa: S307 - our own printed dict
        errors = ("FileNotFoundError", "PermissionError", "NotADirectoryError", "IsADirectoryError")
        assert all(v in errors for v in seen.values()), seen
        root = eval(r.stdout.split("ROOT ", 1)[1].splitlines()[0])  # noqa: S307
        assert not {"etc", "home", "proc", "sys", "var", "run", "tmp"} & set(root), root
        # /dev: the run's own, only the host's null, zero, full, random and urandom (session 35) and, in bubblewrap, a
        # tmpfs of its own for shared memory (session 36)
        dev = eval(r.stdout.split("DEV ", 1)[1].splitlines()[0])  # noqa: S307
        assert set(dev) <= {"null", "zero", "full", "random", "urandom", "shm"}, dev


@pytest.fixture
def shared_folder() -> Iterator[str]:
    """A folder anyone may read and write holding a world-readable "ledger": what a gateway's data
    can look like to whoever the sandbox runs as."""
    folder = tempfile.mkdtemp(prefix="tierwise-test-shared-")
    os.chmod(folder, 0o777)
    path = os.path.join(folder, "ledger.db")
    with open(path, "w") as fh:
        fh.write("PROMPT-OF-ANOTHER-USER")
    os.chmod(path, 0o644)
    yield folder
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)


@BOTH
async def test_host_files_are_out_of_reach(shared_folder: str, audit_hook: bool) -> None:
    ledger = os.path.join(shared_folder, "ledger.db")
    code = (f"import os, glob\nfor p in ('/etc/passwd', '/root', '/proc/1/environ', '/proc/self/environ', {ledger!r},\n"
            "          '/var/run/postgresql'):\n"
            "    try:\n        print('READ', p, open(p).read()[:50])\n    except OSError as e:\n        print('no', p, type(e).__name__)\n"
            "    try:\n        print('LIST', p, os.listdir(p))\n    except OSError as e:\n        pass\n"
            f"try:\n    open({shared_folder + '/dropped.txt'!r}, 'w').write('x')\n    print('WROTE')\n"
            "except OSError as e:\n    print('NOWRITE', type(e).__name__)\n"
            "print('HOME', os.path.expanduser('~'))\n"
            "print('GLOB', glob.glob('/tmp/*') + glob.glob('/home/*') + glob.glob('/root/*'))\n")
    r = await run_python(code, limits=FAST, audit_hook=audit_hook)
    assert "PROMPT-OF-ANOTHER-USER" not in r.stdout and "READ" not in r.stdout, r.stdout
    # A listing shows at most the folders that lead to the interpreter and libraries (/root/.pyenv).
    path_parts = {part for b in layout().binds for part in b.split("/")}
    for line in (x for x in r.stdout.splitlines() if x.startswith("LIST")):
        assert set(eval(line.split(" ", 2)[2])) <= path_parts, line  # noqa: S307 - our own printed list
    assert "WROTE" not in r.stdout and os.listdir(shared_folder) == ["ledger.db"]
    if not audit_hook:
        assert "GLOB []" in r.stdout
    assert "HOME /work" in r.stdout, r.stdout  # (the run's own folder since session 37; the gateway's home: above)


async def test_the_interpreter_and_libraries_are_read_only() -> None:
    code = ("import os, json\nfor p in (os.__file__, json.__file__, '/usr/lib/os-release', '/newfile'):\n"
            "    try:\n        open(p, 'a').write('#')\n        print('WROTE', p)\n    except OSError as e:\n"
            "        print('no', type(e).__name__)\n")
    r = await run_python(code, limits=FAST, audit_hook=False)
    assert "WROTE" not in r.stdout, r.stdout


# ------------------------------------------------------------------ network

async def _listener() -> tuple[asyncio.base_events.Server, int, list[bool]]:
    seen: list[bool] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(True)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


NETWORK = """
import socket
def tcp(port):
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=3)
        s.sendall(b'PING\\r\\n')
        print('TCP', port, s.recv(100))
    except OSError as e:
        print('no tcp', port, e.errno)
def unix(path):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        print('UNIX', path)
    except OSError as e:
        print('no unix', path, e.errno)
tcp(PORT)
tcp(6379)
tcp(5432)
unix('/var/run/postgresql/.s.PGSQL.5432')
unix('/run/postgresql/.s.PGSQL.5432')
unix(ABSTRACT)
unix(HOSTPATH)
try:
    a, b = socket.socketpair()
    a.sendall(b'x'); print('pair', b.recv(1))
except OSError as e:
    print('no pair', e)
"""


@pytest.fixture
def host_unix_socket() -> Iterator[tuple[str, str, Callable[[], bool]]]:
    """A filesystem UNIX socket and an abstract one listening on the host (a database server's), and
    a check whether anything connected to either."""
    folder = tempfile.mkdtemp(prefix="tierwise-test-sock-")
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "db.sock")
    abstract = "\0tierwise-test-abstract-" + os.path.basename(folder)
    servers = []
    for address in (path, abstract):
        s = socket.socket(socket.AF_UNIX)
        s.bind(address)
        s.listen()
        s.setblocking(False)
        servers.append(s)
    os.chmod(path, 0o777)

    def connected() -> bool:
        for s in servers:
            try:
                s.accept()[0].close()
                return True
            except BlockingIOError:
                pass
        return False

    yield path, abstract, connected
    for s in servers:
        s.close()
    os.unlink(path)
    os.rmdir(folder)


@BOTH
async def test_host_sockets_are_unreachable(audit_hook: bool,
                                            host_unix_socket: tuple[str, str, Callable[[], bool]]) -> None:
    path, abstract, connected = host_unix_socket
    server, port, seen = await _listener()
    async with server:
        code = NETWORK.replace("PORT", str(port)).replace("ABSTRACT", repr(abstract)).replace("HOSTPATH", repr(path))
        r = await run_python(code, limits=FAST, audit_hook=audit_hook)
        await asyncio.sleep(0.2)
    out = r.stdout + r.stderr
    assert "TCP" not in r.stdout and "UNIX" not in r.stdout and "PONG" not in out, out
    assert not seen and not connected()
    if not audit_hook:
        assert r.stdout.count("no tcp") == 3 and r.stdout.count("no unix") == 4, out
        assert "pair b'x'" in r.stdout  # AF_UNIX socket pairs (asyncio's self-pipe) still work


# ------------------------------------------------------------------ processes

SPAWN = """
import os, sys
marker = 'CHILD-RAN'
attempts = {}
def attempt(name, fn):
    try:
        attempts[name] = repr(fn())
    except BaseException as e:
        attempts[name] = type(e).__name__ + ' ' + str(getattr(e, 'errno', ''))
def posixsubprocess():
    import _posixsubprocess
    r, w = os.pipe()
    args = [sys.executable.encode(), b'-c', b'print("CHILD-RAN")']
    return _posixsubprocess.fork_exec(args, [args[0]], True, (w,), None, None, -1, -1, -1, -1, -1, -1,
                                      r, w, True, False, -1, None, None, None, -1, None, False)
def ctypes_fork():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pid = libc.fork()
    if pid == 0:
        os.write(1, b'CHILD-RAN\\n'); os._exit(0)
    return pid, ctypes.get_errno()
def ctypes_clone3():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    args = (ctypes.c_uint64 * 11)()
    pid = libc.syscall(435, ctypes.byref(args), 88)
    if pid == 0:
        os.write(1, b'CHILD-RAN\\n'); os._exit(0)
    return pid, ctypes.get_errno()
def ctypes_vfork():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pid = libc.syscall(58)
    if pid == 0:
        os.write(1, b'CHILD-RAN\\n'); os._exit(0)
    return pid, ctypes.get_errno()
attempt('fork', os.fork)
attempt('posix_spawn', lambda: os.posix_spawn(sys.executable, [sys.executable, '-c', 'print("CHILD-RAN")'], {}))
attempt('subprocess', lambda: __import__('subprocess').run([sys.executable, '-c', 'print("CHILD-RAN")']))
attempt('_posixsubprocess', posixsubprocess)
attempt('ctypes fork', ctypes_fork)
attempt('ctypes clone3', ctypes_clone3)
attempt('ctypes vfork', ctypes_vfork)
attempt('multiprocessing', lambda: __import__('multiprocessing').Process(target=print, args=('CHILD-RAN',)).start())
print(repr(attempts))
"""


@BOTH
async def test_no_child_process_can_be_started(audit_hook: bool) -> None:
    """_posixsubprocess.fork_exec is not audited in 3.11 and ctypes skips the hook: seccomp still refuses."""
    need_layer("one_process", "seccomp cannot refuse new processes here")
    r = await run_python(SPAWN, limits=FAST, audit_hook=audit_hook)
    assert "CHILD-RAN" not in r.stdout + r.stderr, r.stdout + r.stderr
    if not audit_hook:
        attempts = eval(r.stdout.strip().splitlines()[-1])  # noqa: S307 - our own printed dict
        assert attempts["fork"] == "PermissionError 1", attempts
        assert attempts["ctypes fork"] == "(-1, 1)" and attempts["ctypes vfork"] == "(-1, 1)", attempts
        assert attempts["ctypes clone3"] == "(-1, 38)", attempts  # ENOSYS: glibc falls back to clone


@BOTH
async def test_fork_bomb_is_contained(audit_hook: bool) -> None:
    code = "import os\nn = 0\ntry:\n    while n < 100000:\n        os.fork()\n        n += 1\nexcept OSError as e:\n    print('STOPPED', n, e.errno)\n"
    r = await run_python(code, limits=FAST, audit_hook=audit_hook)
    assert "STOPPED 0" in r.stdout or "PermissionError" in r.stderr, r.stdout + r.stderr


@BOTH
async def test_kernel_attack_surface_is_refused(audit_hook: bool) -> None:
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def sys(nr, *a):
    rc = libc.syscall(nr, *a)
    return rc, ctypes.get_errno()
print('unshare', sys(272, 0x10000000))
print('mount', libc.mount(b'none', b'/work', b'tmpfs', 0, None), ctypes.get_errno())
print('ptrace', sys(101, 0, 0, 0, 0))
print('keyctl', sys(250, 0, 0, 0, 0))
print('bpf', sys(321, 0, 0, 0))
print('io_uring_setup', sys(425, 1, 0))
print('userfaultfd', sys(323, 0))
print('perf_event_open', sys(298, 0, 0, -1, -1, 0))
print('setns', sys(308, 0, 0))
print('pivot_root', sys(155, b'/work', b'/work'))
"""
    r = await run_python(code, limits=FAST, audit_hook=False)
    for line in r.stdout.strip().splitlines():
        name, rest = line.split(" ", 1)
        assert rest.endswith(" 1)") or rest.endswith(" 1"), line  # every one EPERM


# ------------------------------------------------------------------ resources

async def test_cpu_limit_stops_a_busy_loop() -> None:
    r = await run_python("while True:\n    pass\n", limits=SandboxLimits(wall_s=60, cpu_s=1), audit_hook=False)
    assert not r.ok and not r.timed_out
    assert r.signal in ("SIGXCPU", "SIGKILL")


async def test_wall_clock_limit_kills_a_sleeper() -> None:
    r = await run_python("import time\nprint('start', flush=True)\ntime.sleep(120)\nprint('END')\n",
                         limits=SandboxLimits(wall_s=1, cpu_s=5))
    assert r.timed_out and not r.ok
    assert "END" not in r.stdout


MEMORY = """
import os, threading
held, total, stop = [], [0], []
go = threading.Event()
def grab():
    go.wait()
    while not stop:
        try:
            held.append(bytearray(32 * 1024 * 1024))
            total[0] += 32
        except MemoryError:
            stop.append(1)
r, w = os.pipe()
children = 0
for _ in range(4):
    try:
        if os.fork() == 0:
            go.set(); grab(); os.write(w, b'%d\\n' % total[0]); os._exit(0)
        children += 1
    except OSError:
        pass
os.close(w)
threads = [threading.Thread(target=grab) for _ in range(4)]
[t.start() for t in threads]
go.set()
[t.join() for t in threads]
with os.fdopen(r) as fh:
    from_children = sum(int(x) for x in fh.read().split())
print('TOTAL_MB', total[0] + from_children, 'children', children, flush=True)
"""


@BOTH
async def test_memory_is_bounded_for_the_whole_run(audit_hook: bool) -> None:
    """2+ GB wanted across processes and threads (allowed here): the run gets at most its memory_mb in total."""
    need_layer("memory_total", "the run's memory cannot be bounded in total here")
    limits = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256, threads=True)
    r = await run_python(MEMORY, limits=limits, audit_hook=audit_hook)
    assert "TOTAL_MB" in r.stdout, r.stderr
    assert int(r.stdout.split("TOTAL_MB")[1].split()[0]) < 256


OUTSIDE_THE_ADDRESS_SPACE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
MB = 1 << 20
held = {"shm": 0, "msg": 0, "memfd": 0}
# SysV shared memory: fill a segment, detach it (RLIMIT_AS no longer counts it), make another.
for _ in range(12):
    sid = libc.shmget(0, 64 * MB, 0o1600)
    if sid < 0:
        break
    addr = libc.shmat(sid, None, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        break
    ctypes.memset(addr, 1, 64 * MB)
    libc.shmdt(ctypes.c_void_p(addr))
    held["shm"] += 64
# SysV message queues: 16 KB a queue, thousands of queues.
msg = ctypes.create_string_buffer(b"\\1" * 8 + b"x" * 8000)
for _ in range(4000):
    q = libc.msgget(0, 0o1600)
    if q < 0:
        break
    n = 0
    while libc.msgsnd(q, msg, 8000, 0o4000) == 0:
        n += 8000
    if n == 0:
        break
    held["msg"] += n / MB
# memfds: written, never mapped; each as large as RLIMIT_FSIZE lets it be.
fds = []
for _ in range(40):
    try:
        fd = os.memfd_create("x")
        os.write(fd, b"a" * (16 * MB))
        fds.append(fd)
        held["memfd"] += 16
    except OSError:
        break
print("HELD_MB", int(sum(held.values())), held, flush=True)
"""


async def test_memory_outside_the_address_space_is_bounded_too() -> None:
    """RLIMIT_AS counts mappings only: SysV shared memory and message queues (kept by the IPC
    namespace, not the process) and unmapped memfds would let one run hold GBs of the machine's
    memory with a 256 MB limit. The run keeps at most its memory_mb in total by any route."""
    need_layer("memory_total", "the run's memory cannot be bounded in total here")
    limits = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256)
    r = await run_python(OUTSIDE_THE_ADDRESS_SPACE, limits=limits, audit_hook=False)  # the OS layer alone
    assert "HELD_MB" in r.stdout, r.stderr
    assert int(r.stdout.split("HELD_MB")[1].split()[0]) < limits.memory_mb, r.stdout


async def test_kernel_buffers_cannot_hold_more_than_the_memory_limit() -> None:
    """Socket and pipe buffers live in the kernel, outside RLIMIT_AS; raised to their system
    maximum (SO_SNDBUF/SO_RCVBUF, F_SETPIPE_SZ) 30 socket pairs held 493 MB under a 512 MB limit.
    At their defaults the descriptors the run may open hold a few MB."""
    need_layer("memory_total", "the run's memory cannot be bounded in total here")
    limits = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=128)
    r = await run_python(KERNEL_BUFFERS, limits=limits, audit_hook=False)  # the OS layer alone
    assert "HELD_MB" in r.stdout, r.stderr
    assert int(r.stdout.split("HELD_MB")[1].split()[0]) < limits.memory_mb // 4, r.stdout


async def test_pages_given_to_pipes_do_not_outlive_the_memory_limit() -> None:
    """vmsplice leaves a reference to the page (and its whole huge page) in the pipe; unmapped,
    it no longer counts against RLIMIT_AS: 30 pipes held 960 MB under a 256 MB limit."""
    need_layer("memory_total", "the run's memory cannot be bounded in total here")
    limits = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=128)
    r = await run_python(PINNED_PAGES, limits=limits, audit_hook=False)  # the OS layer alone
    assert "PINNED_MB" in r.stdout, r.stderr
    assert int(r.stdout.split("PINNED_MB")[1].split()[0]) < limits.memory_mb // 4, r.stdout


async def test_a_run_takes_none_of_the_host_users_inotify_instances() -> None:
    """inotify instances are charged to the host user that made the sandbox's user namespace
    (fs.inotify.max_user_instances, 128 by default): two runs holding 61 each left the host
    user 6 of its 128 while they lasted."""
    code = ("import ctypes\nlibc = ctypes.CDLL(None)\nn = 0\nwhile n < 100 and libc.inotify_init1(0) >= 0:\n"
            "    n += 1\nprint('INSTANCES', n)\n")
    r = await run_python(code, limits=FAST, audit_hook=False)
    assert "INSTANCES 0" in r.stdout, r.stdout + r.stderr


async def test_a_run_cannot_take_the_host_users_signal_queue() -> None:
    """Queued signals are charged to the host user that made the sandbox's user namespace: at
    the inherited RLIMIT_SIGPENDING one run queued 96,553 real-time signals to itself, and while
    it ran the host user's own programs could queue none."""
    code = ("import ctypes, os, signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])\n"
            "libc = ctypes.CDLL(None)\nclass V(ctypes.Union):\n    _fields_ = [('i', ctypes.c_int)]\n"
            "n = 0\nwhile n < 200000 and libc.sigqueue(os.getpid(), signal.SIGRTMIN, V(1)) == 0:\n    n += 1\n"
            "print('QUEUED', n)\n")
    r = await run_python(code, limits=FAST, audit_hook=False)
    assert "QUEUED" in r.stdout, r.stderr
    assert int(r.stdout.split("QUEUED")[1].split()[0]) <= 1000, r.stdout


async def test_a_run_takes_one_pid_of_the_host() -> None:
    """Every thread takes a host PID (`kernel.pid_max` is 32,768 here) and a kernel stack that
    RLIMIT_AS does not count, and RLIMIT_NPROC does not hold for a sandbox that is root outside:
    raw clones sharing one small stack made 300 threads of 300 in one run (and could go on until
    the host had no PID left). A run is one task: it starts no thread by any route."""
    need_layer("one_task", "threads cannot be refused here")
    r = await run_python(RAW_THREADS, limits=FAST, audit_hook=False)  # the OS layer alone
    assert "THREADS" in r.stdout, r.stderr
    assert int(r.stdout.split("THREADS")[1].split()[0]) == 0, r.stdout


@BOTH
async def test_threading_says_it_cannot_start_a_thread(audit_hook: bool) -> None:
    code = ("import threading\ntry:\n    threading.Thread(target=print).start()\nexcept RuntimeError as e:\n"
            "    print('REFUSED', e)\n")
    r = await run_python(code, limits=FAST, audit_hook=audit_hook)
    assert "REFUSED can't start new thread" in r.stdout, r.stdout + r.stderr


async def test_threads_when_the_caller_allows_them() -> None:
    """`SandboxLimits(threads=True)`: threads start (and the run does not claim `one_task`);
    new processes are still refused."""
    code = ("import os, threading\nt = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
            "try:\n    os.fork()\nexcept OSError as e:\n    print('fork', e.errno)\n")
    r = await run_python(code, limits=SandboxLimits(wall_s=20, cpu_s=2, memory_mb=256, threads=True), audit_hook=False)
    assert r.stdout.split() == ["thread", "fork", "1"], r.stdout + r.stderr
    assert "one_task" not in r.layers and "one_process" in r.layers


async def test_output_flood_is_capped() -> None:
    r = await run_python("import sys\nfor _ in range(2000):\n    sys.stdout.write('x' * 65536)\n",
                         limits=SandboxLimits(wall_s=20, cpu_s=5, output_bytes=10_000))
    assert r.output_truncated
    assert len(r.stdout) <= 10_000


async def test_the_run_folder_is_bounded_and_vanishes() -> None:
    """A 3,000-deep tree, unreadable folders and a file past the tmpfs size: all inside the run's
    own tmpfs, gone with the sandbox (nothing of it on the host to clean up)."""
    code = ("import os\nfor i in range(3000):\n    os.mkdir('d'); os.chdir('d')\nos.chmod('.', 0)\nos.chdir('/work')\n"
            "try:\n    open('big', 'wb').write(b'x' * (8 << 20))\nexcept OSError as e:\n    print('FULL', e.errno)\n"
            "print('DEEP')\n")
    r = await run_python(code, limits=SandboxLimits(wall_s=30, cpu_s=10, work_mb=4), audit_hook=False)
    assert "DEEP" in r.stdout and "FULL 28" in r.stdout, r.stdout + r.stderr  # ENOSPC
    r = await run_python("import os\nprint(os.listdir('.'))\n", limits=FAST)
    assert r.stdout.strip() == "['main.py']"


async def test_bad_file_names_are_refused() -> None:
    for name in ("../escape.py", "a/b.py", ".hidden", ""):
        with pytest.raises(ValueError, match="plain names"):
            await run_python("pass", files={name: ""})


# ------------------------------------------------------------------ other runs

TAMPER = """
import glob, os
PASSING = 'def add(a, b):\\n    return a + b\\n'
hit = []
for pattern in ('/work/solution.py', '/tmp/*/solution.py', '/tmp/*/*/solution.py', '/tmp/tierwise-sandbox-*/work/*',
                '/proc/*/cwd/solution.py', '/proc/*/root/work/solution.py', '/var/tmp/*/solution.py',
                '/dev/shm/*/solution.py', '/run/*/solution.py', 'HOST_TMP/*/solution.py'):
    for path in glob.glob(pattern) or [pattern]:
        if path == '/work/solution.py':
            continue  # its own
        try:
            open(path, 'w').write(PASSING)
            hit.append(path)
        except OSError:
            pass
print('HIT', hit)
"""


async def test_a_run_cannot_reach_a_concurrent_runs_files() -> None:
    """One request's code tries every path it can guess to turn another request's failing tests
    into a pass; the other request still fails."""
    victim = ("import time\ntime.sleep(3)\nimport importlib, solution\nimportlib.reload(solution)\n"
              "assert solution.add(2, 2) == 4, 'wrong answer'\n")
    wrong = "def add(a, b):\n    return a - b\n"
    tamper = TAMPER.replace("HOST_TMP", tempfile.gettempdir())
    results = await asyncio.gather(
        run_python(victim, files={"solution.py": wrong}, limits=FAST),
        *(run_python(tamper, files={"solution.py": wrong}, limits=FAST, audit_hook=hook) for hook in (False, True)))
    assert not results[0].ok and "wrong answer" in results[0].stderr, results[0]
    assert "HIT []" in results[1].stdout, results[1].stdout + results[1].stderr


# ------------------------------------------------------------------ script agents

async def test_run_script_sees_only_its_folder(tmp_path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "agent.py").write_text(
        "import json, os, sys\nd = json.load(sys.stdin)\n"
        "print(json.dumps({'got': d, 'argv': sys.argv[1:], 'cwd': os.getcwd(), 'mine': sorted(os.listdir(os.path.dirname(__file__)))}))\n"
        "try:\n    open(__file__, 'a').write('#')\n    print('MODIFIED')\nexcept OSError:\n    pass\n")
    (tmp_path / "secret.txt").write_text("SECRET")
    r = await run_script(str(agents / "agent.py"), b'{"q": 1}', ro_binds=[str(agents)], args=["x"], limits=FAST)
    assert r.ok, r.stderr
    assert r.stdout.splitlines()[0] == (
        '{"got": {"q": 1}, "argv": ["x"], "cwd": "/work", "mine": ["agent.py"]}')
    assert "MODIFIED" not in r.stdout
    with pytest.raises(ValueError, match="not inside"):
        await run_script(str(tmp_path / "secret.txt"), b"", ro_binds=[str(agents)])
