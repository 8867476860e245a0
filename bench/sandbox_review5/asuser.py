"""Run a bench program as a gateway of uid 61000 (root only): asuser.py SRC PROGRAM ARGS... (GWCWD: its folder)."""
import os
import subprocess
import sys

sys.path.insert(0, sys.argv[1])
from tierwise.sandbox import identity

uid = 61000
user = identity.User(uid, uid)
src = sys.argv[1]
reach = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), os.path.realpath(src), os.path.dirname(os.path.abspath(__file__))]
os.chdir(os.environ.get("GWCWD", "/tmp"))
prepared = identity.switcher(user, identity.plan(reach, user))
r = subprocess.run([sys.executable, *sys.argv[2:]], env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-x", "HOME": os.environ.get("GWHOME", "/nonexistent")},
                   preexec_fn=lambda: identity.switch(prepared))
sys.exit(r.returncode)
