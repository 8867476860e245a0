"""review28e: hostile shapes (CPU ms of one Detector.scan at 100/200/400 KB). Run from the tree root:
    PYTHONPATH=src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice .venv/bin/python bench/review28e/<this file> [shape ...]"""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_shapes import measure  # noqa: E402

t85 = base64.b85encode(b"a 1 b 2 c 3").decode()
SHAPES = {
 "look short runs": lambda n: ("4lll4ll, " * n)[:n],
 "look short runs2": lambda n: ("1l1l1l1;" * n)[:n],
 "words short runs": lambda n: ("oh oh oh oh 1 1; " * n)[:n],
 "phone cell runs": lambda n: ("phone 1\t2;" * n)[:n],
 "phone cell runs2": lambda n: ("tel 1\t2;" * n)[:n],
 "ip cell runs": lambda n: ("ip 1\t2;" * n)[:n],
 "b85 short text": lambda n: ((t85 + " ") * n)[:n],
 "b32 short": lambda n: ((base64.b32encode(b"a 1 b 2 c").decode().lower().rstrip("=") + " ") * n)[:n],
}
measure(SHAPES, sys.argv[1:])
