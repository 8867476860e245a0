"""Review34d: what reading the text inside image/audio/video payloads (privacy/media_text.py) costs and whom it
would withhold.

1. Random 1 MB payloads behind a PNG signature (`--random N`): how many carry text the detector (NER off) finds a
   value of the default classes in (pii, phi, secrets, customer: each such file would be withheld from a remote
   call); CPU of `media_text`.
2. Image and audio files on this machine (/usr/share, /usr/lib, the venv; at most 2,000 per extension): how many
   carry text with a finding (withheld), and how many carry any text at all.

    PYTHONPATH=src .venv/bin/python bench/privacy_media_text.py [--random 200]
"""

from __future__ import annotations

import argparse
import base64
import collections
import os
import random
import sys
import time

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DEFAULT_CLASSES, PRESETS, DetectionConfig
from tierwise.privacy.media_text import media_text
from tierwise.privacy.payload_bytes import OPAQUE, known_media

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.system_files import system_files  # noqa: E402 (the repository's root on the path first)

DEFAULT = {e for c in DEFAULT_CLASSES for e in PRESETS[c]}  # what a config without `classes:` protects
EXTS = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".tif", ".tiff", ".wav", ".ogg", ".mp3", ".flac",
        ".oga"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=200)
    a = ap.parse_args()
    det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}},
                                                   "ner": {"enabled": False}}))
    rnd = random.Random(34)
    hits, cpu = 0, []
    for _ in range(a.random):
        p = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rnd.randbytes(1_000_000)).decode()
        t = time.process_time()
        text = media_text.__wrapped__(p)  # type: ignore[attr-defined]
        cpu.append(time.process_time() - t)
        hits += OPAQUE in text or bool({f.entity for t in text for f in det.scan(t)} & DEFAULT)
    cpu.sort()
    print(f"random 1 MB payloads: {a.random}, with a finding (withheld) {hits}; media_text CPU min "
          f"{cpu[0] * 1000:.2f} ms, median {cpu[len(cpu) // 2] * 1000:.2f} ms")
    seen: collections.Counter[str] = collections.Counter()
    texty: collections.Counter[str] = collections.Counter()
    held: collections.Counter[str] = collections.Counter()
    found_any: collections.Counter[str] = collections.Counter()
    for e, path in system_files(EXTS):
        if seen[e] >= 2000:
            continue
        try:
            with open(path, "rb") as fh:
                raw = fh.read(20_000_000)
        except OSError:
            continue
        if not known_media(raw[:64]):
            continue
        seen[e] += 1
        text = media_text.__wrapped__(base64.b64encode(raw).decode())  # type: ignore[attr-defined]
        texty[e] += bool(text)
        if OPAQUE in text:  # (privacy18) fails closed: withheld from a remote model
            held[e] += 1
            print(f"  withheld (fails closed): {path}")
            continue
        if found := [f for t in text for f in det.scan(t)]:
            found_any[e] += 1
            if ents := {x.entity for x in found} & DEFAULT:
                held[e] += 1
                print(f"  withheld: {path}: {sorted(ents)}")
    for e in sorted(seen):
        print(f"{e:6} files {seen[e]:5}  with text {texty[e]:5}  a finding of any built-in entity {found_any[e]:5}  "
              f"withheld under the default classes {held[e]}")


if __name__ == "__main__":
    main()
