"""review35f: the secret recognizer's CamelCase pattern (privacy15) against the one it replaced, on every token of up
to 7 characters and 300,000 random ones of each length 8-10, over an alphabet (`--alpha`); prints the differences.

    .venv/bin/python bench/privacy_camel_equiv.py --alpha aAbB1Z9z
"""

import argparse
import itertools
import random
import re

OLD = re.compile(r"[a-z]*(?:[A-Z][a-z]{2,}|[A-Z]{1,4}(?![a-z])|\d{1,4}|[a-z]{2,})+")
NEW = re.compile(r"(?:[a-z](?=[A-Z0-9]))?(?:[A-Z][a-z]{2,}+|[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)|\d++|[a-z]{2,}+)+")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alpha", default="aAbB1Z9z")
    alpha = ap.parse_args().alpha
    rnd = random.Random(35)
    diff = n = 0
    for length in range(1, 11):
        tokens = (("".join(t) for t in itertools.product(alpha, repeat=length)) if length <= 7
                  else ("".join(rnd.choice(alpha) for _ in range(length)) for _ in range(300_000)))
        for s in tokens:
            n += 1
            if bool(OLD.fullmatch(s)) != bool(NEW.fullmatch(s)):
                diff += 1
                if diff <= 10:
                    print("DIFF", s, bool(OLD.fullmatch(s)), bool(NEW.fullmatch(s)))
    print("tokens", n, "diffs", diff)


if __name__ == "__main__":
    main()
