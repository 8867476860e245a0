"""A gateway whose user's user namespaces are all held elsewhere, after its probe: exhaust.py SRC."""
import asyncio
import subprocess
import sys
import time

sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_python

bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
print("read-only host", backend.weak_read_only_host())
# another program of the gateway's user holds the one user namespace its user may have now
time.sleep(1)
holds = [subprocess.Popen([sys.executable, "-I", "-S", "-c", "import ctypes, time, sys\nassert ctypes.CDLL(None).unshare(0x10000000) == 0\nprint('held', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True) for _ in range(2)]
print([h.stdout.readline().strip() for h in holds])
try:
    r = asyncio.run(run_python("print('hello')", limits=SandboxLimits(wall_s=30)))
    print("RESULT", r.returncode, repr(r.stdout), repr(r.stderr[-300:]), r.layers)
except BaseException as e:
    print("RAISED", type(e).__name__, e)
finally:
    [h.kill() for h in holds]
