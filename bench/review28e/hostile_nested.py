"""review28e: hostile shapes (CPU ms of one Detector.scan at 100/200/400 KB). Run from the tree root:
    PYTHONPATH=src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice .venv/bin/python bench/review28e/<this file> [shape ...]"""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_shapes import measure  # noqa: E402

bb = base64.b32encode(base64.b32encode(b"id 1234 5678 x")).decode()
SHAPES = {
 "%5C run": lambda n: ("%5C" * n)[:n],
 "%5Cu0040 run": lambda n: ("%5Cu0040" * n)[:n],
 "bs run": lambda n: ("\\" * n),
 "N{ unterminated": lambda n: ("\\N{A" * n)[:n],
 "&#92; run": lambda n: ("&#92;" * n)[:n],
 "css 6 hex + sp": lambda n: ("\\000040 " * n)[:n],
 "b32 of b32 tokens": lambda n: ((bb + " ") * n)[:n],
 "b64 of b64 long run": lambda n: (base64.b64encode(base64.b64encode(b"id 1234 5678 x" * (n // 20))).decode())[:n],
 "id numbers plain": lambda n: ("id 1234 5678 x" * n)[:n],
 "b85 of b64 tokens": lambda n: ((base64.b85encode(base64.b64encode(b"id 1234 5678")).decode() + " ") * n)[:n],
}
measure(SHAPES, sys.argv[1:])
