"""review28e: hostile shapes (CPU ms of one Detector.scan at 100/200/400 KB). Run from the tree root:
    PYTHONPATH=src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice .venv/bin/python bench/review28e/<this file> [shape ...]"""
import base64
import sys

sys.argv_shapes = True
exec(open('bench/review28e/hostile_shapes.py').read().split("SHAPES = {")[0])
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
exec("det = Detector" + open('bench/review28e/hostile_shapes.py').read().split("det = Detector", 1)[1])
