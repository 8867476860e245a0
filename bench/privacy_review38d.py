"""Review38d (privacy round 18 under review): camera files withheld, amounts read as cards, and the CPU and memory the
new readers take on hostile inputs, for the tree on PYTHONPATH (run it against a worktree of another commit to compare).

    PYTHONPATH=<tree>/src .venv/bin/python bench/privacy_review38d.py [--files 100] [--amounts 5000] [--slow]

`--slow` adds the hostile inputs (quadratic on privacy18: ~7, ~11 and ~28 s of CPU there).
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import resource
import struct
import time
import zipfile
import zlib

from PIL import Image

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DEFAULT_CLASSES, PRESETS, DetectionConfig
from tierwise.privacy.media_text import archive, media_text
from tierwise.privacy.payload_bytes import OPAQUE

DEFAULT = {e for c in DEFAULT_CLASSES for e in PRESETS[c]}


def _img(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, fmt)
    return out.getvalue()


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body) + 8) + kind + body


def camera_files(det: Detector, n: int) -> None:
    """Camera-like MPOs (two images, EXIF with body/lens serial numbers, an image id, a maker note) and motion photos
    (a JPEG, then an MP4): how many are withheld under the default classes."""
    rnd = random.Random(38)

    def exif() -> Image.Exif:
        e = Image.Exif()
        e[0x010F], e[0x0110], e[0x0132] = "FUJIFILM", "FinePix REAL 3D W3", "2026:12:07 14:00:09"
        e[0x8769] = {0xA431: str(rnd.randrange(10**9, 10**12)), 0xA435: str(rnd.randrange(10**9, 10**12)),
                     0xA420: f"{rnd.getrandbits(128):032x}", 0x9003: "2026:12:07 14:00:09",
                     0x927C: b"FUJIFILM\x0c\x00\x00\x00" + rnd.randbytes(300) + b"SERIAL "
                     + str(rnd.randrange(10**11, 10**12)).encode() + rnd.randbytes(200)}
        return e

    def photo() -> Image.Image:
        return Image.frombytes("RGB", (320, 240), rnd.randbytes(320 * 240 * 3))

    def mpo() -> bytes:
        out = io.BytesIO()
        photo().save(out, "MPO", save_all=True, append_images=[photo()], exif=exif(), quality=80)
        return out.getvalue()

    def motion() -> bytes:
        out = io.BytesIO()
        photo().save(out, "JPEG", exif=exif(), quality=80)
        mvhd = _box(b"mvhd", bytes(4) + struct.pack(">IIII", 3_790_000_000, 3_790_000_000, 1000, 2500) + rnd.randbytes(80))
        return out.getvalue() + _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41") + _box(
            b"mdat", rnd.randbytes(300_000)) + _box(b"moov", mvhd + _box(b"udta", _box(b"\xa9too", b"Lavf58.76.100")))

    for name, make in (("camera MPO", mpo), ("motion photo", motion)):
        held = closed = 0
        cpu = []
        for _ in range(n):
            p = base64.b64encode(make()).decode()
            t = time.process_time()
            texts = media_text.__wrapped__(p)  # type: ignore[attr-defined]
            cpu.append(time.process_time() - t)
            found = {f.entity for x in texts if x != OPAQUE for f in det.scan(x)} & DEFAULT
            closed += OPAQUE in texts
            held += OPAQUE in texts or bool(found)
        cpu.sort()
        print(f"{name}: {n} files, withheld {held} (fail closed {closed}); media_text median {cpu[n // 2] * 1000:.1f} ms")


def amounts(det: Detector, n: int) -> None:
    """Random amounts of 13-19 (and 13-15) digits with thousands separators in a CSV line: how many read as a card."""
    rnd = random.Random(38)
    for label, lo, hi in (("13-19 digits", 10**12, 10**19), ("13-15 digits", 10**12, 10**15)):
        for sep in (",", ".", "'"):
            hits = 0
            for _ in range(n):
                v = f"{rnd.randrange(lo, hi):,}".replace(",", sep)
                text = f'total,"{v}{".00" if sep == "," else ""}",USD'
                hits += any(f.entity == "CREDIT_CARD" for f in det.scan(text))
            print(f"amounts {label}, separator {sep!r}: {hits} of {n} read as a card")


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    png = _img("PNG")
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]


def hostile() -> None:
    cases = {
        "docx: 256 KB of '<w:br <hex> ' (no '>')": lambda: ("zip", _zip({"word/document.xml": ("<w:t>" + "".join(
            f"<w:br {i * 2654435761 % 2**32:08x} " for i in range(16000))).encode()})),
        "png private chunk: XMP of 120 KB '<dc:a>'": lambda: ("media", _png_chunk(
            b"prVt", b"\x00\x01\xff\xfe<x:xmpmeta>" + b"<dc:a>" * 20000 + b"</x:xmpmeta>")),
        "jpeg + 340 KB of 'exif:GPSLatitude>'": lambda: ("media", _img("JPEG") + b"exif:GPSLatitude>" * 20000),
    }
    for name, make in cases.items():
        k, data = make()
        p = base64.b64encode(data).decode()
        t = time.process_time()
        (archive if k == "zip" else media_text).__wrapped__(p)  # type: ignore[attr-defined]
        print(f"{name}: file {len(data)} B, CPU {(time.process_time() - t) * 1000:.1f} ms", flush=True)


def inflation() -> None:
    """A JPEG of 200 APP15 segments, each a zlib stream of 1 MB of text (210 KB in all)."""
    z = zlib.compress(b"a " * (1 << 19), 9)
    seg = b"\xff\xef" + struct.pack(">H", len(z) + 2) + z
    jpg = _img("JPEG")
    data = jpg[:2] + seg * 200 + jpg[2:]
    texts = media_text.__wrapped__(base64.b64encode(data).decode())  # type: ignore[attr-defined]
    print(f"200 zlib segments ({len(data)} B): {sum(map(len, texts))} chars of text, fails closed {OPAQUE in texts}, "
          f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--amounts", type=int, default=5000)
    ap.add_argument("--slow", action="store_true")
    a = ap.parse_args()
    det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}},
                                                   "ner": {"enabled": False}}))
    camera_files(det, a.files)
    amounts(det, a.amounts)
    if a.slow:
        hostile()
    inflation()


if __name__ == "__main__":
    main()
