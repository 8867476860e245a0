"""Cost of masking upstream error text made of words the address patterns catch (wire12: providers/address_words.py
reads each match's context), repeated to 2,000 and 4,000 characters (the cuts of what is masked), both masks, best of
30. Run against this tree and a baseline: `PYTHONPATH=<src> .venv/bin/python bench/error_words_shapes.py`."""

from __future__ import annotations

import time

from tierwise.providers.address_mask import json_mask, text_mask

SHAPES = ["x.py:42 ", "1.2.3.4 ", "vllm 0.6.3.4 ", "length:4096 ", "/a/b.cu:70 ", "10.0.0.1 ",
          "1.2.3.4.5 ", "1.2.3.4.5.6.7.8.", "tcp length:4096 "]  # (the last three: review35b)


def best_ms(text: str, runs: int = 30) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        json_mask(text)
        text_mask(text)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main() -> None:
    print("| shape | chars | json_mask + text_mask ms |\n|---|---:|---:|")
    for unit in SHAPES:
        for n in (2000, 4000):
            print(f"| `{unit.strip()}` | {n:,} | {best_ms((unit * (n // len(unit) + 1))[:n]):.1f} |")
    distinct = "".join(f"vllm {a}.{b}.3.4 " for a in range(1, 200) for b in range(200))[:4000]
    print(f"| `vllm a.b.3.4`, all distinct | 4,000 | {best_ms(distinct):.1f} |")


if __name__ == "__main__":
    main()
