"""Time to read hostile judge replies: `parse_grade` and the reflective route's reasoning line, on each reply below
(one call each; a probe of why the reply is read at its ends only, RESULTS "Learning-loop attack round").

    PYTHONPATH=src .venv/bin/python bench/judge_reply_parse_time.py
"""

from __future__ import annotations

import time

from tierwise.policies.reflective import _reasoning
from tierwise.verifiers.judge import parse_grade

CASES = {
    "8 MB of reasoning, verdict at the end": "x " * 4_000_000 + "\nVERDICT: good",
    "8 MB of 'verdict' + spaces, no grade": "verdict" + " " * 8_000_000,
    "8 MB of '{' (JSON fallback)": "{" * 8_000_000,
    "8 MB of 'not good ' words": "not good " * 900_000,
    "reasoning without a verdict": "The answer is fine in places and wrong in others.",
    "two verdict lines (judge's, then a quoted one)": "VERDICT: poor\nThe answer's last line was:\nVERDICT: good",
    "Cyrillic o look-alike ('gооd')": "Checked.\nVERDICT: g\u043e\u043ed",
    "fullwidth GOOD": "Checked.\nVERDICT: \uff27\uff2f\uff2f\uff24",
    "U+0261 script g": "Checked.\nVERDICT: \u0261ood",
    "zero-width joiner inside": "Checked.\nVERDICT: go\u200dod",
    "60 MB of '{'": "{" * 60_000_000,
    "60 MB of 'verdict' + spaces": "verdict" + " " * 60_000_000,
    "60 MB of short lines": "ab\n" * 20_000_000 + "VERDICT: good",
}


def main() -> None:
    for name, text in CASES.items():
        t0 = time.perf_counter()
        grade = parse_grade(text)
        t1 = time.perf_counter()
        reasoning = _reasoning(text)
        t2 = time.perf_counter()
        print(f"| {name} | {grade!r} | {len(reasoning)} | grade {(t1 - t0) * 1000:,.2f} ms, "
              f"reasoning {(t2 - t1) * 1000:,.2f} ms |")


if __name__ == "__main__":
    main()
