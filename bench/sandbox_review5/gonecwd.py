# ruff: noqa: E701, E702, B007  (a compact probe run as a script by hand, see bench/RESULTS.md "Review of sandbox round 5")
"""A gateway whose working folder was removed under it: gonecwd.py SRC."""
import asyncio
import os
import shutil
import sys
import tempfile

sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, run_python

bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
d = tempfile.mkdtemp(dir="/var/tmp"); os.chdir(d); shutil.rmtree(d)   # a release folder replaced under a running gateway
for i in range(2):
    try:
        r = asyncio.run(run_python("print('hello')", limits=SandboxLimits(wall_s=30)))
        print("RESULT", r.returncode, repr(r.stdout), repr(r.stderr[-300:]), r.layers)
    except BaseException as e:
        print("RAISED", type(e).__name__, e)
