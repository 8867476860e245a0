"""Event-loop time to turn an upstream's error page into the log's excerpt (providers/error_pages.page_text), for
pages of unclosed openers (16 KiB, the most that is read), with the tag pattern main had before review30e and with
the module's own. `PYTHONPATH=src .venv/bin/python bench/error_page_cost.py`"""

from __future__ import annotations

import re
import time

from tierwise.providers import error_pages

BEFORE = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL)  # (session 30)
PAGES = {"<!--": b"<!--" * 4096, "<script": b"<script" * 2340, "<": b"<" * 16384, "<a": b"<a" * 8192,
         "nginx 502": b"<html><head><title>502</title></head><body><center>nginx</center></body></html>" * 200}


def best_ms(fn, raw: bytes, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn(raw[:16384])
        best = min(best, time.perf_counter() - t)
    return best * 1000


def before(raw: bytes) -> str:
    return re.sub(r"\s+", " ", BEFORE.sub(" ", raw.decode("utf-8", "replace"))).strip()


if __name__ == "__main__":
    print(f"{'page (16 KiB)':<14}{'before ms':>11}{'after ms':>10}")
    for name, raw in PAGES.items():
        print(f"{name:<14}{best_ms(before, raw):>11.2f}{best_ms(error_pages.page_text, raw):>10.2f}")
