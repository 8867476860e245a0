# ruff: noqa: E701, E702, B007  (a compact probe run as a script by hand, see bench/RESULTS.md "Review of sandbox round 5")
"""Run argv in a user namespace (identity map 0-65535) where user.max_user_namespaces is 0: no nested user ns."""
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe(); r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w); os.close(r2)
    assert libc.unshare(0x10000000) == 0, ctypes.get_errno()
    os.write(w2, b"1"); os.read(r, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as fh:
        fh.write(sys.argv[1])
    os.setresgid(0, 0, 0); os.setresuid(0, 0, 0)
    os.execv(sys.argv[2], sys.argv[2:])
os.close(r); os.close(w2)
os.read(r2, 1)
for name, line in (("uid_map", "0 0 65536"), ("gid_map", "0 0 65536")):
    with open(f"/proc/{pid}/{name}", "w") as fh:
        fh.write(line)
os.write(w, b"1")
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
