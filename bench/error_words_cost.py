"""Event-loop time for `providers.error_pages.masked` (a provider's JSON error message, as a 2xx body's or a stream
event's message carries it, with no bound of its own) on long encoded messages: what `address_mask.readable` decodes
before the mask. Run once per tree: `PYTHONPATH=src .venv/bin/python bench/error_words_cost.py` and with
`PYTHONPATH=/tmp/base_<branch>/src` (review34c)."""

from __future__ import annotations

import time

from tierwise.providers.error_pages import masked

SHAPES = {"&amp;#46;": "&amp;#46;", "%2525252E": "%2525252E", "\\\\\\\\u002e": "\\\\\\\\u002e",
          "&timestamp;&": "&timestamp;&", "ZWSP digits": "1\u200b"}
SIZES = (16_000, 65_536, 1_048_576)


def best_ms(text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        masked(text, 400)
        best = min(best, time.perf_counter() - t)
    return best * 1000


if __name__ == "__main__":
    print("| shape | " + " | ".join(f"{n:,} chars" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for name, unit in SHAPES.items():
        row = [best_ms((unit * (n // len(unit) + 1))[:n]) for n in SIZES]
        print(f"| `{name}` | " + " | ".join(f"{ms:.1f} ms" for ms in row) + " |")
