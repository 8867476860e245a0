"""A gateway whose working folder was removed under it: gonecwd.py SRC."""
import asyncio, os, sys, tempfile, shutil
sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_python
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
d = tempfile.mkdtemp(dir="/var/tmp"); os.chdir(d); shutil.rmtree(d)   # a release folder replaced under a running gateway
for i in range(2):
    try:
        r = asyncio.run(run_python("print('hello')", limits=SandboxLimits(wall_s=30)))
        print("RESULT", r.returncode, repr(r.stdout), repr(r.stderr[-300:]), r.layers)
    except BaseException as e:
        print("RAISED", type(e).__name__, e)
