"""review28e: hostile shapes (CPU ms of one Detector.scan at 100/200/400 KB). Run from the tree root:
    PYTHONPATH=src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice .venv/bin/python bench/review28e/<this file> [shape ...]"""
import base64
import sys
import time

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

b85 = base64.b85encode(b"call 415 555 2671 ok").decode()
a85 = base64.a85encode(b"call 415 555 2671 ok").decode()
bb = base64.b64encode(base64.b64encode(b"call me at 415 555 2671")).decode()
b32 = base64.b32encode(b"phone 415 555 2671").decode().rstrip("=").lower()
SHAPES = {
 "b85 text tokens": lambda n: ((b85 + " ") * n)[:n],
 "a85 frames ws": lambda n: (("<~" + a85[:10] + " " + a85[10:] + "~> ") * n)[:n],
 "a85 open only": lambda n: (("<~ " ) * n)[:n],
 "a85 open+far close": lambda n: ("<~ a" * (n//4))[:n-2] + "~>",
 "b64 of b64": lambda n: ((bb + " ") * n)[:n],
 "b32 lower tokens": lambda n: ((b32 + " ") * n)[:n],
 "b32 huge run": lambda n: (b32 * n)[:n],
 "N{} escapes": lambda n: ("\\N{COMMERCIAL AT}" * n)[:n],
 "N{} bad names": lambda n: (("\\N{" + "A" * 58 + "}") * n)[:n],
 "css escapes": lambda n: ("\\40 " * n)[:n],
 "octal escapes": lambda n: ("\\100" * n)[:n],
 "%u escapes": lambda n: ("%u0040" * n)[:n],
 "dbl bs hex": lambda n: ("\\\\4" * n)[:n],
 "digit words run": lambda n: ("one two three four five six seven " * n)[:n],
 "digit words+dot": lambda n: ("two oh three dot " * n)[:n],
 "look runs": lambda n: ("4lll llll llll llll " * n)[:n],
 "look dotted": lambda n: ("2O3.O.ll3.45 " * n)[:n],
 "phone cue cells": lambda n: ("phone\t415\t555\t2671\n" * n)[:n],
 "ip tags": lambda n: ("ip <td>203</td><td>0</td><td>113</td><td>45</td> " * n)[:n],
 "hint long tags": lambda n: (("1|" + "<a" + "b"*58 + ">" * 1) * n)[:n],
 "cue + hint nodigit": lambda n: (("phone 1\t" + "<br>" * 40 + "x ") * n)[:n],
 "escape mix": lambda n: ("%u0040\\40 \\100\\N{FULL STOP}" * n)[:n],
}


def measure(shapes: dict, names: list[str]) -> None:
    """CPU ms of one scan of each shape at 100/200/400 KB (stops a shape past 30 s), and its s/MB."""
    det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}},
                                                   "ner": {"enabled": False}, "max_chars": 10_000_000}))
    for name in names or list(shapes):
        make = shapes[name]
        row = []
        for n in (100_000, 200_000, 400_000):
            t = time.process_time()
            det.scan(make(n))
            row.append(time.process_time() - t)
            if row[-1] > 30:
                break
        print(f"{name:20} " + " / ".join(f"{x*1000:.0f}" for x in row)
              + f" ms  ({row[-1]/(0.1*2**(len(row)-1)):.1f} s/MB)", flush=True)


if __name__ == "__main__":
    measure(SHAPES, sys.argv[1:])
