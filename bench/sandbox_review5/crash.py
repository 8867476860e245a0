"""Two long weak runs, for the caller to SIGKILL this gateway under: crash.py SRC."""
import asyncio
import sys

sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, run_python

bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
async def main():
    await asyncio.gather(*[run_python("import time\nprint('up', flush=True)\ntime.sleep(60)", limits=SandboxLimits(wall_s=90, threads=i == 1)) for i in range(2)])
asyncio.run(main())
