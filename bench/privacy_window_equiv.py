"""privacy16: the URL-credentials and secret-assignment recognizers searched a window at every `://` / cue word again
(`://a` or `key=` repeated: ~5 us a character, the detector's worst case). Checks what the bounded search finds
against the old one on random texts made of the pieces they look for: run `--out` with each `src`, then `--compare`
(per text and recognizer: the same characters covered, more, or fewer).

    PYTHONPATH=<old>/src .venv/bin/python bench/privacy_window_equiv.py --n 100000 --out /tmp/old.json
    PYTHONPATH=src .venv/bin/python bench/privacy_window_equiv.py --n 100000 --out /tmp/new.json
    .venv/bin/python bench/privacy_window_equiv.py --compare /tmp/old.json /tmp/new.json
"""

import argparse
import json
import random

PIECES = ["://", "@", ":", "/", " ", "a", "b1", "http", "user", "pw", "x.y", "key", "=", "password", "token", ": ",
          "bearer ", "Basic ", "abcdefgh", "Zx8Qw2Lp9Rt4Vb7N", "'", '"', "\n", "_", "-", "secret", "is ", "api_key",
          "hooks.slack.com", "?", "#", ",", ";", "<", "{", "$", "private_key", "access-token", "PASSWORD", "İ"]


def run(n: int, out: str) -> None:
    from tierwise.privacy.recognizers.contact import UrlCredentialsRecognizer
    from tierwise.privacy.recognizers.secrets import SecretRecognizer

    rnd = random.Random(16)
    rec = (UrlCredentialsRecognizer(), SecretRecognizer())
    rows = []
    for _ in range(n):
        text = "".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 120)))
        rows.append([[(f.start, f.end) for f in r.find(text)] for r in rec])
    with open(out, "w") as f:
        json.dump(rows, f)


def compare(old: str, new: str) -> None:
    with open(old) as f:
        a = json.load(f)
    with open(new) as f:
        b = json.load(f)
    for k, name in enumerate(("url_credentials", "secrets")):
        same = more = fewer = exact = 0
        for x, y in zip(a, b, strict=True):
            cx = {i for s, e in x[k] for i in range(s, e)}
            cy = {i for s, e in y[k] for i in range(s, e)}
            exact += x[k] == y[k]
            if cx == cy:
                same += 1
            elif cx <= cy:
                more += 1
            else:
                fewer += 1
        print(f"{name}: {len(a)} texts; findings identical {exact}; characters covered the same {same}, "
              f"more {more}, fewer {fewer}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--out")
    ap.add_argument("--compare", nargs=2)
    a = ap.parse_args()
    if a.compare:
        compare(*a.compare)
    else:
        run(a.n, a.out)


if __name__ == "__main__":
    main()
