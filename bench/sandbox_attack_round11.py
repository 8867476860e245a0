"""Session 30's sandbox attack round (bench/RESULTS.md "Sandbox attack round 11"): what a hostile run does in each
mode, OS layer alone (no audit hook). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round11.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

`weak`: bubblewrap hidden (a root gateway's read-only host); `landlock`: no mount namespace either (Landlock alone,
as a root gateway without CAP_SYS_ADMIN). Attacks: `capabilities` (what an exec could still grant), `fill` (a run
fills its folder with empty files until its memory cgroup kills it: the gateway's CPU to remove them), `splice` (pipe
slots holding page-cache references), `utime` (the times of world-writable files outside the run), `probes` (stat,
access, readlink and the host's name), `packages` (the system's Pythons' installed packages). `compiler` runs `capabilities` in the compiler of `python_code`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.security.capability_probe import CAPABILITIES  # noqa: E402 (the test's probe: one source)

FILL = """
import os
n = 0
while True:
    if n % 1000 == 0:
        os.mkdir(f"d{n // 1000}")
    os.close(os.open(f"d{n // 1000}/{n % 1000}", os.O_CREAT | os.O_WRONLY, 0o600))
    n += 1
"""

SPLICE = """
import os
files = sorted(os.path.join(top, n) for top in ("/usr/lib/x86_64-linux-gnu", "/usr/lib") if os.path.isdir(top)
               for n in os.listdir(top) if os.path.isfile(os.path.join(top, n))
               and not os.path.islink(os.path.join(top, n)) and os.path.getsize(os.path.join(top, n)) > (8 << 20))[:8]
fds = [os.open(f, os.O_RDONLY) for f in files]
slots, pipes, why = 0, 0, None
try:
    while True:
        r, w = os.pipe()
        pipes += 1
        for _ in range(16):
            fd = fds[slots % len(fds)]
            os.splice(fd, w, 1, offset_src=((slots // len(fds)) * (2 << 20)) % (os.fstat(fd).st_size - 1))
            slots += 1
except OSError as e:
    why = e.strerror
print(f"{pipes} pipes, {slots} slots holding page-cache references of {len(files)} libraries (stopped: {why})")
"""

UTIME = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
NOW = (TS * 2)(TS(0, (1 << 30) - 1), TS(0, (1 << 30) - 1))
def call(r):
    if r != 0:
        raise OSError(ctypes.get_errno(), "")
routes = {"os.utime": lambda p: os.utime(p), "utimensat NOW": lambda p: call(libc.utimensat(-100, p, NOW, 0)),
          "utime": lambda p: call(libc.syscall(132, p, None)), "utimes": lambda p: call(libc.syscall(235, p, None)),
          "futimesat": lambda p: call(libc.syscall(261, -100, p, None)), "explicit": lambda p: os.utime(p, (0, 0))}
for path in (WORLD_WRITABLE, b"/tmp", b"/dev/shm", b"/dev/null"):
    said = []
    for name, route in routes.items():
        try:
            route(path)
            said.append(f"{name} TOUCHED")
        except OSError as e:
            said.append(f"{name} {os.strerror(e.errno)}")
    print(path.decode(), ": ", ", ".join(said), sep="")
"""

PACKAGES = """
import os
def attempt(what, fn):
    try:
        return f"{what} {fn()}"
    except OSError as e:
        return f"{what} {e.strerror}"
print(attempt("listed:", lambda: len(os.listdir("/usr/lib/python3/dist-packages"))), "|",
      attempt(f"read {TARGET}:", lambda: len(open(TARGET, "rb").read())))
"""

PROBES = """
import os
uids, n = set(), 0
for pid in range(1, 1 << 16):
    try:
        uids.add(os.stat(f"/proc/{pid}").st_uid)
        n += 1
    except OSError:
        pass
def size(p):
    try:
        return os.stat(p).st_size
    except OSError as e:
        return e.strerror
print(f"/proc/<pid> by stat: {n} processes, {len(uids)} uids; /etc/shadow size {size('/etc/shadow')}; "
      f"access /etc/passwd {os.access('/etc/passwd', os.R_OK)}; host name {os.uname().nodename}")
"""


_REAL: dict[str, object] = {}


def _configure(mode: str) -> None:
    from tierwise import sandbox
    from tierwise.sandbox import backend
    from tierwise.sandbox import bwrap as bwrap_mod

    _REAL.setdefault("bwrap_path", bwrap_mod.bwrap_path)
    _REAL.setdefault("read_only", backend.weak_read_only_host)
    bwrap_mod.bwrap_path = (lambda: None) if mode != "bwrap" else _REAL["bwrap_path"]  # type: ignore[assignment]
    backend.weak_read_only_host = _REAL["read_only"]  # type: ignore[assignment]
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=mode != "bwrap")
    if mode == "landlock":
        backend.weak_read_only_host = functools.cache(lambda: False)  # type: ignore[assignment]


async def run_attacks(modes: list[str], only: list[str], attacks: Mapping[str, Callable[[], Awaitable[str]]], *,
                      bwrap_only: tuple[str, ...] = (), one_line: bool = True) -> None:
    """Each attack (those named in `only`; all when it is empty) in each mode, `bwrap_only` ones in bwrap alone, printed
    as `[mode] name: what it said` (on one line unless `one_line` is off): the attack benches' one driver."""
    for mode in modes:
        _configure(mode)
        for name, attack in attacks.items():
            if (not only or name in only) and (name not in bwrap_only or mode == "bwrap"):
                said = await attack()
                print(f"[{mode}] {name}: {said.replace(chr(10), '; ') if one_line else said}", flush=True)


def command_line(doc: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(modes, attacks) from `--mode` and `--only` (every mode, every attack when not given)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=["bwrap", "weak", "landlock"])
    parser.add_argument("--only", action="append", choices=list(names))
    args = parser.parse_args()
    return args.mode or ["bwrap", "weak", "landlock"], args.only or []


async def _run(code: str, cpu_s: int = 5) -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(code, limits=SandboxLimits(wall_s=60, cpu_s=cpu_s, memory_mb=256), audit_hook=False)
    said = r.stdout.strip() or r.summary()
    return f"{said} [layers: {', '.join(r.layers)}]"


async def _fill() -> str:
    """The gateway's CPU (all its threads) and wall time to remove what the run left, and its event loop's worst lag."""
    from tierwise.sandbox import weak

    real = weak.remove_tree
    seen: list[str] = []

    def timed(path: str) -> bool:
        cpu, wall = time.process_time(), time.perf_counter()
        gone = real(path)
        seen.append(f"clean-up {time.perf_counter() - wall:.2f} s, gateway CPU {time.process_time() - cpu:.2f} s")
        return gone

    weak.remove_tree = timed  # type: ignore[assignment]
    lags: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - start - 0.005)

    ticker = asyncio.create_task(tick())
    said = await _run(FILL)
    done.set()
    await ticker
    weak.remove_tree = real  # type: ignore[assignment]
    return f"{said}; {'; '.join(seen) or 'no clean-up in the gateway'}; loop lag max {max(lags) * 1000:.0f} ms"


def _package_file() -> str:
    """A `.py` file of Debian's python3-* packages (the run may not be able to list the folder to find one)."""
    folder = "/usr/lib/python3/dist-packages"
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return next((os.path.join(folder, n) for n in names if n.endswith(".py")), "/nonexistent")


async def main(modes: list[str], only: list[str]) -> None:
    folder = tempfile.mkdtemp(prefix="tw-round11-")
    os.chmod(folder, 0o1777)
    target = os.path.join(folder, "world-writable")
    open(target, "w").close()
    os.chmod(target, 0o666)
    os.utime(target, (0, 0))
    attacks = {"capabilities": lambda: _run(CAPABILITIES), "splice": lambda: _run(SPLICE),
               "utime": lambda: _run(f"WORLD_WRITABLE = {target.encode()!r}\n" + UTIME),
               "probes": lambda: _run(PROBES, cpu_s=20), "fill": _fill,
               "packages": lambda: _run(f"TARGET = {_package_file()!r}\n" + PACKAGES)}
    await run_attacks(modes, only, attacks, one_line=False)
    if not only or "compiler" in only:
        from tierwise.verifiers import code as code_mod

        code_mod._COMPILE = "import sys\nsys.stdin.buffer.read()\n" + CAPABILITIES  # type: ignore[attr-defined]
        print(f"[compiler] capabilities: {await code_mod._compile_in_child('x = 1')}")
    print(f"the 0666 file's mtime after: {os.stat(target).st_mtime:.0f} (0: untouched)")


if __name__ == "__main__":
    asyncio.run(main(*command_line(__doc__, ["capabilities", "fill", "splice", "utime", "probes", "packages",
                                             "compiler"])))
