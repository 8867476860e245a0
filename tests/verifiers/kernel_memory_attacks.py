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

# Threads that cost no address space: raw `clone(CLONE_THREAD)` calls whose children share one
# 64 KB stack and only ever `pause()` (x86-64 machine code; elsewhere `_thread` with the smallest
# stacks). Each takes a PID of the host and a kernel stack. Prints `THREADS n`.
RAW_THREADS = """
import ctypes, mmap, platform, struct
WANT = 300
n = 0
if platform.machine() == "x86_64":
    flags = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000  # VM FS FILES SIGHAND THREAD SYSVSEM
    stack = mmap.mmap(-1, 65536)
    sp = ctypes.addressof(ctypes.c_char.from_buffer(stack)) + 65536 - 64
    # mov eax, 56 (clone); mov rdi, flags; mov rsi, sp; xor edx, edx; xor r10, r10; xor r8, r8;
    # syscall; test eax, eax; jz child; ret; child: mov eax, 34 (pause); syscall; jmp child
    stub = (b"\\xb8\\x38\\x00\\x00\\x00" + b"\\x48\\xbf" + struct.pack("<Q", flags) + b"\\x48\\xbe"
            + struct.pack("<Q", sp) + b"\\x31\\xd2\\x4d\\x31\\xd2\\x4d\\x31\\xc0\\x0f\\x05\\x85\\xc0\\x74\\x01\\xc3"
            + b"\\xb8\\x22\\x00\\x00\\x00\\x0f\\x05\\xeb\\xf7")
    code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(stub)
    clone = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(code)))
    while n < WANT and clone() > 0:
        n += 1
else:
    import _thread, threading
    threading.stack_size(32768)
    try:
        while n < WANT:
            _thread.start_new_thread(threading.Event().wait, ())
            n += 1
    except RuntimeError:
        pass
print("THREADS", n, flush=True)
import os
os._exit(0)
"""
