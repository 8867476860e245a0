"""CPU cost of wire/json_prefix.ObjectPrefix fed hostile tool-argument pieces (wire4, session 27).

    PYTHONPATH=src python bench/json_prefix_hostile.py            # this tree
    PYTHONPATH=/tmp/base/src python bench/json_prefix_hostile.py  # another

A number streamed 10 digits a piece and `[` one a piece: before session 27 each piece re-matched the
whole number (or copied every open container), quadratic on the event loop.
"""

from __future__ import annotations

import sys
import time

from tierwise.wire.json_prefix import ObjectPrefix

sizes = [int(a) for a in sys.argv[1:]] or [20_000, 40_000, 80_000]
for n in sizes:
    p = ObjectPrefix()
    p.feed('{"a": ')
    t = time.process_time()
    for _ in range(n):
        p.feed("[")
    print(f"nesting   {n:>7,} pieces: {time.process_time() - t:7.2f} s CPU, still an object: {p.ok}")
for n in sizes:
    p = ObjectPrefix()
    p.feed('{"a": 1')
    t = time.process_time()
    for _ in range(n):
        p.feed("1111111111")
    print(f"number    {n:>7,} pieces: {time.process_time() - t:7.2f} s CPU, still an object: {p.ok}")
