"""How many random base64 tokens holding a `/` the SECRET recognizer still catches: the cost in recall of reading
relative paths (`r0/skill-creator/SKILL`) as words, not random text (session 35, newuser35).

Compare two checkouts by their `src`: `PYTHONPATH=<checkout>/src .venv/bin/python bench/secret_random_slashes.py`.
The tokens are seeded (the same in both runs): base64 of 15, 24, 30 or 33 random bytes, `=` stripped, each scanned
alone and after the word `secret`.
"""

from __future__ import annotations

import base64
import random

from tierwise.privacy.recognizers.secrets import SecretRecognizer


def main() -> None:
    r = SecretRecognizer()
    rng = random.Random(7)
    slashed = found = 0
    for _ in range(100_000):
        tok = base64.b64encode(rng.randbytes(rng.choice([15, 24, 30, 33]))).decode().rstrip("=")
        if "/" not in tok:
            continue
        slashed += 1
        found += any(next(iter(r.find(t)), None) is not None for t in (tok, "secret " + tok))
    print(f"random base64 tokens holding a '/': {slashed:,}; caught: {found:,} ({found / slashed:.4%})")


if __name__ == "__main__":
    main()
