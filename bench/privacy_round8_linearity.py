"""Linearity of session 28's views (privacy/layout_contact.py, digit_views.py, encoded.py's base32 / Ascii85 /
base85, textnorm's CSS and octal escapes) on hostile text: CPU ms of one `Detector.scan` at 100, 200 and 400 KB of
each shape (doubling the text should double the time). One tree per run:

    PYTHONPATH=src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice .venv/bin/python bench/privacy_round8_linearity.py
    PYTHONPATH=/other/tree/src ... (the same)
"""

from __future__ import annotations

import time

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

SHAPES = {
    "digit words": lambda n: ("four one " * n)[:n],
    "words+digits": lambda n: ("four 41 " * n)[:n],
    "4l anchors": lambda n: ("4l" * n)[:n],
    "4l tokens spaced": lambda n: ("4l " * n)[:n],
    "phone cue + tabs": lambda n: ("phone\t" + "1\t" * n)[:n],
    "cue words": lambda n: ("ip | " * n)[:n],
    "cue + cells": lambda n: ("phone | 41 | 55 | " * n)[:n],
    "85 long token": lambda n: "!" * n,
    "85 short tokens": lambda n: (("a!b#" * 5 + " ") * n)[:n],
    "css starts": lambda n: ("\\4" * n)[:n],
    "base32 run": lambda n: "A" * n,
    "b32 tokens": lambda n: ("ABCDEFGHIJKLMNOP234567 " * n)[:n],
}


def main() -> None:
    det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}},
                                                   "ner": {"enabled": False}, "max_chars": 10_000_000}))
    for name, make in SHAPES.items():
        row = []
        for n in (100_000, 200_000, 400_000):
            text = make(n)
            t = time.process_time()
            det.scan(text)
            row.append(time.process_time() - t)
        print(f"{name:20} " + " / ".join(f"{x * 1000:.0f}" for x in row) + " ms", flush=True)


if __name__ == "__main__":
    main()
