"""Privacy round 15 (privacy15): archives in a payload are read with bounded decompression (privacy/archives.py)
instead of refused. Whom that serves: archives on this machine (zip, wheels, jars, office files, gzip, bzip2, xz,
tar; /usr/share, /usr/lib, the venv; at most `--per-ext` per extension, each at most 4 MB), each counted as
- read, clean: reaches the remote model whole (round 14: every one failed closed);
- withheld: a finding of the default classes (pii, phi, secrets, customer) in its files' text or names;
- fails closed: past a bound or holding a file the scan cannot read (a PDF, a binary, a `.pyc`, a `.so`);
and the CPU of reading them (`media_text`: inflate, decode, word runs; the detector's scan not included).

    PYTHONPATH=src .venv/bin/python bench/privacy_archives.py [--per-ext 200]
"""

from __future__ import annotations

import argparse
import base64
import collections
import os
import sys
import time

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DEFAULT_CLASSES, PRESETS, DetectionConfig
from tierwise.privacy.media_text import media_text
from tierwise.privacy.payload_bytes import opaque

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.system_files import system_files  # noqa: E402 (the repository's root on the path first)

DEFAULT = {e for c in DEFAULT_CLASSES for e in PRESETS[c]}
EXTS = {".zip", ".whl", ".jar", ".docx", ".xlsx", ".odt", ".epub", ".gz", ".tgz", ".bz2", ".xz", ".tar"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-ext", type=int, default=200)
    a = ap.parse_args()
    det = Detector(DetectionConfig.model_validate({"ner": {"enabled": False}}))
    seen: collections.Counter[str] = collections.Counter()
    clean: collections.Counter[str] = collections.Counter()
    held: collections.Counter[str] = collections.Counter()
    closed: collections.Counter[str] = collections.Counter()
    cpu: dict[str, float] = collections.defaultdict(float)
    size: collections.Counter[str] = collections.Counter()
    ents: collections.Counter[str] = collections.Counter()
    for e, path in system_files(EXTS):
        if seen[e] >= a.per_ext or os.path.islink(path):
            continue
        try:
            if os.path.getsize(path) > 4_000_000:
                continue
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        seen[e] += 1
        size[e] += len(raw)
        p = base64.b64encode(raw).decode()
        t = time.process_time()
        shut = opaque(p)
        texts = () if shut else media_text(p)
        cpu[e] += time.process_time() - t
        if shut:
            closed[e] += 1
            continue
        found = {x.entity for t in texts for x in det.scan(t)} & DEFAULT
        if found:
            held[e] += 1
            ents.update(found)
        else:
            clean[e] += 1
    for e in sorted(seen):
        print(f"{e:6} files {seen[e]:4} ({size[e] / 2**20:6.1f} MB)  read, clean {clean[e]:4}  withheld {held[e]:4}  "
              f"fails closed {closed[e]:4}  read CPU {cpu[e] * 1000 / max(size[e] / 2**20, 1e-9):6.1f} ms per MB")
    print("entities that withheld:", dict(ents.most_common()))


if __name__ == "__main__":
    main()
