"""review37c: bits passed between two sandbox runs through a process-shared futex on a word of libc's code (a page
every run maps from one file, so the kernel keys the futex by the file, not the process). Not a test: it prints what
it saw.

    PYTHONPATH=src .venv/bin/python bench/review37c_futex_channel.py [--mode bwrap|weak|landlock ...] [--threads receiver|both]

The receiver waits (FUTEX_WAIT, no private flag) in slots of SLOT seconds; the sender wakes that word through the middle of
the slots of a 1 bit and keeps still through the 0s. `--threads`: the receiver (or both) a run with threads allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import _configure  # noqa: E402 (one way to pick a mode)

SLOT = 0.5
MESSAGE = "10110010011101000110101100101101"
_COMMON = r"""
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, P = ctypes.c_long, ctypes.c_void_p
addr = ctypes.cast(libc.getpid, P).value & ~3
word = ctypes.c_uint32.from_address(addr).value
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
START, SLOT, N = {start}, {slot}, {n}
"""
RECEIVER = _COMMON + r"""
bits = ""
for i in range(N):
    end = START + (i + 1) * SLOT
    woken = False
    while (left := end - time.time()) > 0.01:
        r = libc.syscall(L(202), P(addr), L(0), L(word), ctypes.byref(TS(0, int(left * 1e9))), P(0), L(0))
        woken = woken or r == 0
        if r != 0 and ctypes.get_errno() != 110:
            time.sleep(left)
    bits += "1" if woken else "0"
print("RECEIVED", bits)
"""
SENDER = _COMMON + r"""
message, woke = "{message}", 0
for i, bit in enumerate(message):
    time.sleep(max(0, START + (i + 0.2) * SLOT - time.time()))
    end = START + (i + 0.7) * SLOT
    while time.time() < end:
        if bit == "1":
            woke += max(0, libc.syscall(L(202), P(addr), L(1), L(1), P(0), P(0), L(0)))
        time.sleep(0.005)
    time.sleep(max(0, START + (i + 1) * SLOT - time.time()))
print("WOKE", woke)
"""


async def channel(threads: str | None) -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    start = time.time() + 4.0
    fill = {"start": start, "slot": SLOT, "n": len(MESSAGE), "message": MESSAGE}
    limits = SandboxLimits(wall_s=60, cpu_s=30, memory_mb=256, threads=threads == "both")
    receiver_limits = SandboxLimits(wall_s=60, cpu_s=30, memory_mb=256, threads=threads is not None)
    got, sent = await asyncio.gather(
        run_python(RECEIVER.replace("{start}", repr(start)).format(**fill), limits=receiver_limits, audit_hook=False),
        run_python(SENDER.replace("{start}", repr(start)).format(**fill), limits=limits, audit_hook=False))
    bits = got.stdout.split()[-1] if got.ok and got.stdout.strip() else got.summary()
    right = sum(a == b for a, b in zip(bits, MESSAGE, strict=True)) if len(bits) == len(MESSAGE) else 0
    return (f"sent {MESSAGE} received {bits}: {right} of {len(MESSAGE)} bits right "
            f"({1 / SLOT:.0f} bits/s offered), {sent.stdout.strip() or sent.summary()}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=["bwrap", "weak", "landlock"])
    parser.add_argument("--threads", choices=["receiver", "both"])
    args = parser.parse_args()
    for mode in args.mode or ["bwrap", "weak", "landlock"]:
        _configure(mode)
        print(f"[{mode}{f' threads: {args.threads}' if args.threads else ''}] {await channel(args.threads)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
