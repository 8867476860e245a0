# ruff: noqa: E701, E702, B007  (a compact probe run as a script by hand, see bench/RESULTS.md "Review of sandbox round 5")
"""The runs' cgroup folders before and after N runs and runs killed in every way: cgcount.py SRC weak N."""
import asyncio
import glob
import os
import sys

sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, cgroup, run_python

if sys.argv[2] == "weak":
    bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
def count():
    return sum(len(glob.glob(os.path.join(p.parent, "tierwise-*"))) for p in cgroup.places()[0])
print("places", cgroup.places())
print("before", count())
async def main():
    n = int(sys.argv[3])
    rs = []
    for i in range(n):
        rs.append(await run_python("print(sum(range(1000)))", limits=SandboxLimits(wall_s=30)))
    print("ok", sum(r.stdout.strip() == "499500" for r in rs), "of", n, "after", count())
    r = await run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", limits=SandboxLimits(wall_s=30))
    print("selfkill", r.returncode, r.signal, "after", count())
    r = await run_python("while True: pass", limits=SandboxLimits(wall_s=2, cpu_s=30))
    print("wall", r.timed_out, r.signal, "after", count())
    r = await run_python("x = bytearray(10**9)", limits=SandboxLimits(wall_s=20, memory_mb=64))
    print("mem", r.returncode, r.stderr[-80:], "after", count())
    r = await run_python("import os\nfor i in range(100000): os.mkdir(str(i))", limits=SandboxLimits(wall_s=20, work_mb=4))
    print("inodes", r.returncode, r.stderr[-80:], "after", count())
    # a run cancelled mid-way (the client went away)
    t = asyncio.ensure_future(run_python("import time\ntime.sleep(20)", limits=SandboxLimits(wall_s=30)))
    await asyncio.sleep(1.5); t.cancel()
    try: await t
    except asyncio.CancelledError: pass
    await asyncio.sleep(0.5)
    print("cancelled after", count())
asyncio.run(main())
