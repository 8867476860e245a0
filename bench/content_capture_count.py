"""Bytecodes of `observer.content_of` (the captured `gen_ai.input.messages` of a request, run at the end of each
sampled request with `tracing.capture_content: true` only), per request, for this tree and another (A/B): a
count, not a time, so the machine's load does not move it. The session-21 bound (cut to 16,384 characters
before encoding) against the version that encoded the whole conversation.

    PYTHONPATH=src .venv/bin/python bench/content_capture_count.py --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import sys
from tierwise.canonical import Message, Request, TextBlock
from tierwise.observability.observer import content_of

def count(fn, *a):
    n = 0
    def tr(frame, event, arg):
        nonlocal n
        frame.f_trace_opcodes = True
        if event == "opcode":
            n += 1
        return tr
    sys.settrace(tr)
    try:
        fn(*a)
    finally:
        sys.settrace(None)
    return n

cases = {
    "3 short messages": Request(model="m", system=[TextBlock("be brief")], messages=[
        Message("user", [TextBlock("What is 6 * 7?")]), Message("assistant", [TextBlock("42")]),
        Message("user", [TextBlock("and 6 * 8?")])]),
    "40 messages of 2,000 chars": Request(model="m", messages=[Message("user", [TextBlock("x" * 2000)])] * 40),
    "1 message of 2 MB": Request(model="m", messages=[Message("user", [TextBlock("y" * 2_000_000)])]),
}
for name, req in cases.items():
    print(f"{name}\t{count(content_of, req)}\t{len(content_of(req))}")
"""


def run(src: str) -> dict[str, tuple[int, int]]:
    out = subprocess.run([sys.executable, "-c", CHILD], env={"PYTHONPATH": src}, capture_output=True, text=True,
                         check=True).stdout
    return {n: (int(b), int(c)) for n, b, c in (line.split("\t") for line in out.splitlines())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="src")
    ap.add_argument("--baseline-src", required=True)
    a = ap.parse_args()
    A, B = run(a.src), run(a.baseline_src)
    print("| request | A bytecodes | B bytecodes | A / B | A chars kept | B chars kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in A:
        print(f"| {name} | {A[name][0]:,} | {B[name][0]:,} | {A[name][0] / B[name][0]:.3f} | {A[name][1]:,} | "
              f"{B[name][1]:,} |")


if __name__ == "__main__":
    main()
