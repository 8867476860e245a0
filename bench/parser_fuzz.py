"""Seeded mutation fuzz of the request path's file readers in process (session 38, fuzz38): image_size, pdf_pages,
the privacy scan's media_text (PNG/JPEG/GIF/WebP/audio/archives, office XML inside) and office_text, on the seed
files of bench/gateway_fuzz.py mutated the same way. Counts calls, exceptions (each distinct one printed once, its
input kept under --out) and calls over 0.5 s. Each exception here is a 500 at the gateway (tests/privacy/
test_fuzz38_archives.py shows the ones found).

    PYTHONPATH=src:. .venv/bin/python bench/parser_fuzz.py --seed 3 --seconds 180
"""

from __future__ import annotations

import argparse
import base64
import random
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gateway_fuzz import SEEDS, mutate
from tierwise.image_size import image_size
from tierwise.pdf_pages import pdf_pages
from tierwise.privacy.media_text import media_text
from tierwise.privacy.office_text import office_text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out", default="/tmp/parser_fuzz")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"calls": 0, "exceptions": 0, "over 0.5 s": 0}
    seen: set[tuple[str, str, int]] = set()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        media = rng.choice(list(SEEDS))
        raw = mutate(rng, mutate(rng, SEEDS[media]()))
        b64 = base64.b64encode(raw).decode()
        readers: list[tuple[str, Callable[[Any], object], Any]] = [
            ("image_size", image_size, f"data:{media};base64,{b64}"), ("pdf_pages", pdf_pages, raw),
            ("media_text", media_text, b64), ("office_text", office_text, raw.decode("latin-1"))]
        for name, read, arg in readers:
            counts["calls"] += 1
            t = time.perf_counter()
            try:
                read(arg)
            except Exception as e:  # noqa: BLE001 - every exception is a finding
                counts["exceptions"] += 1
                key = (name, type(e).__name__, traceback.extract_tb(e.__traceback__)[-1].lineno or 0)
                if key not in seen:
                    seen.add(key)
                    (out / f"{name}_{len(seen)}.b64").write_text(b64)
                    print("EXCEPTION", key, repr(e)[:200], flush=True)
            if time.perf_counter() - t > 0.5:
                counts["over 0.5 s"] += 1
                (out / f"slow_{name}_{counts['over 0.5 s']}.b64").write_text(b64)
    print(counts)


if __name__ == "__main__":
    main()
