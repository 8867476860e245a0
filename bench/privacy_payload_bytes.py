"""Round 14 (privacy14): what the payload-bytes rule costs and whom it refuses.

1. CPU of `request_scan.iter_texts` over a request carrying three 1 MB PNG payloads (an image block's data, an image
   `data:` URL, an unmodelled block's base64 source), min of 20.
2. Image and audio files on this machine (/usr/share, /usr/lib, the venv; at most 2,000 per extension): how many
   would fail closed (neither a known image/audio format by their first bytes nor text).

    PYTHONPATH=<tree>/src .venv/bin/python bench/privacy_payload_bytes.py [--no-files]
"""

from __future__ import annotations

import base64
import collections
import os
import random
import sys
import time

from tierwise.canonical import ImageBlock, Message, OtherBlock, Request, TextBlock
from tierwise.privacy.charsets import decode
from tierwise.privacy.request_scan import iter_texts

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.system_files import system_files  # noqa: E402 (the repository's root on the path first)


def scan_cost() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(750_000)).decode()
    r = Request(model="m", messages=[Message("user", [
        ImageBlock(media_type="image/png", data=png), ImageBlock(url="data:image/png;base64," + png),
        OtherBlock({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}),
        TextBlock("Describe these.")])])
    try:  # review34d: a payload's text is kept per payload; each pass reads it again (a new request's payload)
        from tierwise.privacy.media_text import media_text
        clear = media_text.cache_clear
    except ImportError:
        clear = None  # (a tree before review34d)
    best = 1e9
    for _ in range(20):
        if clear is not None:
            clear()
        t = time.process_time()
        list(iter_texts(r))
        best = min(best, time.process_time() - t)
    print(f"iter_texts, 3 x 1 MB PNG payloads: {best * 1000:.2f} ms CPU (min of 20)")


def files() -> None:
    from tierwise.privacy.payload_bytes import known_media

    exts = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".tif", ".tiff", ".wav", ".ogg", ".mp3",
            ".flac", ".oga", ".svg"}
    seen: collections.Counter[str] = collections.Counter()
    bad: collections.Counter[str] = collections.Counter()
    for e, path in system_files(exts):
        if seen[e] < 2000:
            try:
                with open(path, "rb") as fh:
                    head = fh.read(4096)
            except OSError:
                continue
            seen[e] += 1
            bad[e] += not known_media(head[:64]) and decode(head, partial=True) is None
    for e in sorted(seen):
        print(f"{e:6} files {seen[e]:5}  would fail closed {bad[e]}")


if __name__ == "__main__":
    scan_cost()
    if "--no-files" not in sys.argv:
        files()
