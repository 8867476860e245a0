"""Programs that take kernel memory outside RLIMIT_AS, as an attacker in a sandbox run would: the
one source for tests/verifiers/test_sandbox.py (which asserts they stay bounded) and
bench/sandbox_kernel_memory.py (which reports how much they hold). Each prints a marker and the
MB it held as a whole number first (`HELD_MB 3 …`, `PINNED_MB 0 …`)."""

# Every descriptor the run may open: socket pairs filled both ways after asking for the largest
# buffers (SO_SNDBUF/SO_RCVBUF), then pipes after F_SETPIPE_SZ, until out of descriptors.
KERNEL_BUFFERS = """
import fcntl, os, socket
MB = 1 << 20
held = {"sockets": 0, "pipes": 0}
ends = []
try:
    while len(ends) < 30:
        a, b = socket.socketpair()
        ends += [a, b]
        for s in (a, b):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    s.setsockopt(socket.SOL_SOCKET, option, 1 << 30)
                except OSError:
                    pass
            s.setblocking(False)
            try:
                while True:
                    held["sockets"] += s.send(b"x" * 65536)
            except BlockingIOError:
                pass
    while True:
        r, w = os.pipe()
        ends += [r, w]
        try:
            fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
        except OSError:
            pass
        os.set_blocking(w, False)
        try:
            while True:
                held["pipes"] += os.write(w, b"x" * 65536)
        except BlockingIOError:
            pass
except OSError:
    pass  # out of descriptors
print("HELD_MB", int(sum(held.values()) / MB), {k: round(v / MB, 1) for k, v in held.items()}, flush=True)
"""

# One byte of each of 16 fresh 2 MB huge pages given to each pipe with vmsplice, the pages then
# unmapped (the pipe keeps them), until out of descriptors.
PINNED_PAGES = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
HUGE = 2 << 20
pinned, pipes = 0, []
try:
    while True:
        r, w = os.pipe()
        pipes.append((r, w))
        os.set_blocking(w, False)
        for _ in range(16):
            p = libc.mmap(None, 2 * HUGE, 3, 0x22, -1, 0)
            a = (p + HUGE - 1) & ~(HUGE - 1)
            libc.madvise(ctypes.c_void_p(a), HUGE, 14)  # MADV_HUGEPAGE
            ctypes.memset(a, 1, HUGE)
            n = libc.vmsplice(w, ctypes.byref(iovec(a, 1)), 1, 0)
            libc.munmap(ctypes.c_void_p(p), 2 * HUGE)
            if n != 1:
                raise OSError(ctypes.get_errno(), "vmsplice")
            pinned += HUGE
except OSError as e:
    print("PINNED_MB", pinned >> 20, "stopped:", e, flush=True)
"""
