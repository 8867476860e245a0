"""What finding hidden values costs on the request path, A/B in one process, interleaved rounds
(CPU time of this thread, median of rounds; ratios B/A).

1. Text normalisation (`tierwise.privacy.textnorm.normalise`): A = the version at git ref
   `--base` (loaded from `git show`), B = this tree's (look-alike letters, escapes). On the
   2,000-token request of bench/privacy_boundary.py (ASCII: the common case), on the same text
   with a Cyrillic look-alike in every value, and on Russian prose.
2. The first crossing's scan of that request (`Guard.scan_request`, structured detectors):
   A = without the junction scan for split values (`Guard._find_split` a no-op), B = with it;
   cold (phone-validity and junction caches cleared: a conversation never seen) and warm (the
   junction cache kept: the next turn re-sends the history). Run on the request as built (every
   text ends with a value: the junction gate lets every junction through, the worst case) and on
   a multi-turn chat whose turns end in prose.

    nice -n 5 python bench/privacy_hidden_values.py --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from git_source import module_at  # noqa: E402
from privacy_boundary import big_request  # noqa: E402

from tierwise.canonical import Message, Request, TextBlock  # noqa: E402
from tierwise.config import parse_config  # noqa: E402
from tierwise.privacy import textnorm  # noqa: E402
from tierwise.privacy.boundary import Boundary, Guard, request_texts  # noqa: E402
from tierwise.privacy.recognizers import contact  # noqa: E402

BASE = """
providers:
  cloud: {kind: anthropic, base_url: "http://127.0.0.1:9", locality: remote}
models:
  frontier: {provider: cloud, model: big}
ledger: {enabled: false}
privacy: {ner: {enabled: false}, classes: {pii: {}, secrets: {}}, policy: {pii: redact, secrets: block}}
"""
RUSSIAN = ("Добрый день! Напишите, пожалуйста, когда будет готов отчёт за квартал и кто его проверит. "
           "Мы обсуждали это вчера на встрече, и Сергей обещал прислать черновик до пятницы. ") * 20


def old_textnorm(ref: str) -> Any:
    return module_at(ref, "src/tierwise/privacy/textnorm.py", "textnorm_base")


def chat(turns: int = 12) -> Request:
    """A conversation whose turns end in prose, with values inside them."""
    msgs = []
    for i in range(turns):
        if i % 2 == 0:
            text = ("My card is 4111 1111 1111 1111 and you can mail jane.doe@example.com about it. "
                    "Could you please check the refund status and tell me what happens next?")
            msgs.append(Message("user", [TextBlock(text)]))
        else:
            msgs.append(Message("assistant", [TextBlock("I checked the order history and the refund was issued "
                                                        "yesterday; it should arrive within five working days.")]))
    return Request(model="frontier", messages=msgs, max_tokens=100)


def cpu(fn: Any, n: int) -> float:
    t = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--base", default="main", help="git ref whose textnorm is A")
    a = ap.parse_args()
    old = old_textnorm(a.base)
    req = big_request()
    texts = [t for t in request_texts(req) if t]
    look_alike = [t.replace("jane.doe@example.com", "jаne.doe@example.com").replace("DE89", "DЕ89") for t in texts]
    norm_cases = {"ASCII request texts": texts, "same, a Cyrillic look-alike in values": look_alike,
                  "Russian prose (2,400 chars)": [RUSSIAN]}
    b = Boundary(parse_config(BASE).privacy)
    real_split = Guard._find_split
    scans = {"2,000-token request (texts end in values)": req, "12-turn chat (turns end in prose)": chat()}

    def first(r: Request, split: bool, cold: bool) -> None:
        if cold:
            contact._valid_in.cache_clear()
            contact._possible_in.cache_clear()
            b.junction_cache.clear()
        Guard._find_split = real_split if split else (lambda self, req: None)  # type: ignore[method-assign]
        Guard(b, "main").scan_request(r)

    res: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(a.rounds):
        for name, ts in norm_cases.items():
            for side, mod in (("A", old), ("B", textnorm)):
                res.setdefault(("normalise", name, side), []).append(
                    cpu(lambda mod=mod, ts=ts: [mod.normalise(t) for t in ts], 50))
        for name, r in scans.items():
            for cold in (True, False):
                for side, split in (("A", False), ("B", True)):
                    key = ("scan_request " + ("cold" if cold else "warm"), name, side)
                    res.setdefault(key, []).append(cpu(lambda r=r, split=split, cold=cold: first(r, split, cold), 10))
    Guard._find_split = real_split  # type: ignore[method-assign]
    print(f"rounds: {a.rounds}; A = {a.base} / no junction scan, B = this tree; µs of CPU per call\n")
    print("| what | input | A µs | B µs | B/A | B/A per round (min-max) |\n|---|---|---:|---:|---:|---|")
    for (what, name, side), v in res.items():
        if side != "A":
            continue
        va, vb = v, res[(what, name, "B")]
        ratios = [y / x for x, y in zip(va, vb, strict=True)]
        print(f"| {what} | {name} | {statistics.median(va):.0f} | {statistics.median(vb):.0f} | "
              f"{statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} |")


if __name__ == "__main__":
    main()
