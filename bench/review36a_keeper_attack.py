"""review36a: a weak run (read-only host, PID namespace) attacks its keeper and init: signals to its process group,
to PID 1 and -1, a stop, setsid, inherited descriptors, its parent-death signal, its environment. ABI=N makes its
Landlock ruleset ABI N's (as tests/landlock_abi.py): below 6 no signal scope.

    PYTHONPATH=src [ABI=1] .venv/bin/python bench/review36a_keeper_attack.py [name ...]
"""
import asyncio
import os
import sys
import time

from tierwise import sandbox
from tierwise.sandbox import landlock

if os.environ.get("ABI"):
    _v = int(os.environ["ABI"])
    landlock.abi = lambda: _v  # type: ignore[assignment]
from tierwise.sandbox import SandboxLimits, bwrap, run_python  # noqa: E402

bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
PROGS = {
"kill0_term": """
import os, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('pg', os.getpgrp(), os.getsid(0), os.getpid(), os.getppid(), flush=True)
os.kill(0, signal.SIGTERM)
import time; time.sleep(1)
print('alive')
""",
"killm1": """
import os, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
try:
    os.kill(-1, signal.SIGTERM); print('sent')
except OSError as e: print('refused', e)
import time; time.sleep(1)
print('alive')
""",
"kill1": """
import os, signal
for s in (signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP, 0):
    try:
        os.kill(1, s); print('sent', s)
    except OSError as e: print('refused', s, e)
""",
"tstp": """
import os, signal, time
signal.signal(signal.SIGTSTP, signal.SIG_IGN)
os.kill(0, signal.SIGTSTP)
time.sleep(0.5)
print('still running', flush=True)
""",
"setsid": """
import os, time
try:
    print('setsid', os.setsid(), os.getsid(0), os.getpgrp(), flush=True)
except OSError as e: print('setsid refused', e, flush=True)
time.sleep(60)
""",
"fds": """
import os
for fd in range(3, 64):
    try:
        os.fstat(fd); print('open fd', fd)
    except OSError: pass
print('done')
""",
"pdeath": """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print('pdeath', libc.prctl(1, 0, 0, 0, 0), ctypes.get_errno())
""",
"usr1": """
import os, signal, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.kill(0, signal.SIGUSR1)
time.sleep(0.2)
print('got', got, flush=True)
os.kill(0, signal.SIGTERM)
time.sleep(3)
print('after term', flush=True)
""",
"arena": """
import os
print('ENV', dict(os.environ))
""",
}
async def main() -> None:
    for name in sys.argv[1:] or PROGS:
        t = time.time()
        r = await run_python(PROGS[name], limits=SandboxLimits(wall_s=5, cpu_s=5, memory_mb=256), audit_hook=False)
        print(f"== {name}: rc={r.returncode} sig={r.signal} timed_out={r.timed_out} {time.time()-t:.1f}s layers={'pidns' in r.layers}\n{r.stdout}{r.stderr[-300:]}")
asyncio.run(main())
