"""Event-loop time to mask an upstream's error text (providers/address_mask.py), on hostile shapes (runs of name
characters, colons, `@`, schemes) at several sizes: the module's patterns against another tree's (`--baseline-src`,
e.g. a worktree of main). What the gateway masks is cut first (a JSON message to 2,000 characters by
`error_pages.upstream_text`, a plain-text answer to 4,000 bytes), so the sizes past those say whether the cost is
linear. `PYTHONPATH=src .venv/bin/python bench/address_mask_cost.py --baseline-src /tmp/base_review33c/src`"""

from __future__ import annotations

import argparse
import importlib.util
import time
from types import ModuleType

SHAPES = {"a.": "a.", "a-": "a-", "a-×30 a.": "a-" * 30 + "a.", "a.b:": "a.b:", "0:": "0:", "a@": "a@",
          "http:": "http:", "x.×20 corp.": "x." * 20 + "corp. ", "prose": "used 4096 of 128000 tokens at 12:30; "}
SIZES = (2000, 4000, 16000)
# What `readable` decodes before the mask (wire11): layers of escapes, references and invisible characters.
ENCODED = {"&#46;": "10&#46;", "&amp;#46;": "1&amp;#46;", "\\u002e": "10\\u002e", "\\\\u002e": "1\\\\u002e",
           "%26%2346%3B": "1%26%2346%3B", "ZWSP": "1\u200b0.", "fullwidth": "\uff11\uff10.", "prose &": "R&D 50% a\\b "}


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("mask_" + str(abs(hash(path))), path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def best_ms(fn, text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - t)
    return best * 1000


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline-src")
    args = ap.parse_args()
    trees = {"this": load("src/tierwise/providers/address_mask.py")}
    if args.baseline_src:
        trees["baseline"] = load(f"{args.baseline_src}/tierwise/providers/address_mask.py")
    print("| shape | chars | " + " | ".join(f"{t} json_mask ms | {t} text_mask ms" for t in trees) + " |")
    for name, unit in SHAPES.items():
        for n in SIZES:
            text = (unit * (n // len(unit) + 1))[:n]
            cells = []
            for mod in trees.values():
                cells += [f"{best_ms(mod.json_mask, text):.1f}", f"{best_ms(mod.text_mask, text):.1f}"]
            print(f"| {name} | {n:,} | " + " | ".join(cells) + " |")
    mod = trees["this"]
    print("\n| encoded shape | chars | this readable ms | this readable + json_mask ms |\n|---|---:|---:|---:|")
    for name, unit in ENCODED.items():
        for n in SIZES:
            text = (unit * (n // len(unit) + 1))[:n]
            both = best_ms(lambda t: mod.json_mask(mod.readable(t)), text)
            print(f"| {name} | {n:,} | {best_ms(mod.readable, text):.1f} | {both:.1f} |")
