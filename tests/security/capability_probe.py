"""The sandboxed program that prints what an exec could ever grant it, shared by tests/security/test_sandbox_round11.py
and bench/sandbox_attack_round11.py: the bounding set (prctl PR_CAPBSET_READ for each capability), the ambient set,
whether no_new_privs holds and the seccomp mode. Read with system calls: no run has a /proc of its own to read CapBnd
from."""

CAPABILITIES = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def prctl(*args):
    return libc.prctl(*[ctypes.c_ulong(a) for a in args])
bounding = sum(1 << cap for cap in range(64) if prctl(23, cap, 0, 0, 0) == 1)
ambient = sum(1 << cap for cap in range(64) if prctl(47, 1, cap, 0, 0) == 1)
print(f"UID {os.getresuid()} GID {os.getresgid()} GROUPS {os.getgroups()}")
print(f"CAPBND {bounding:x} CAPAMB {ambient:x} NNP {prctl(39, 0, 0, 0, 0)} SECCOMP {prctl(21, 0, 0, 0, 0)}")
"""
