"""privacy17's two speed-ups of the slowest input (digits between spaces), checked to find what they found before:
- the date recognizer tries its numeric pattern only at digit runs a date can go on from (`_may_follow`): on random
  texts of date pieces, against trying every digit run (the code before);
- the card recognizer's split of a long digit run bisects the ends each start can have: on random runs of digits,
  spaces and dashes (a valid card put in some), against `ids.py` at session 37's start (git show 3b370322).

    PYTHONPATH=src .venv/bin/python bench/privacy_round17_equiv.py --n 200000
"""

import argparse
import importlib.util
import random
import subprocess
import tempfile

from tierwise.privacy.recognizers import dates, ids
from tierwise.privacy.recognizers.prescan import Prescan

PIECES = ["1", "12", "2024", "31", "0", "9", " ", "  ", "\t", "\n", "\x1c", "-", "/", ".", ":", ",", "st", "th", "er",
          "º", "°", "am", "pm", "a.m.", "PM", "h", "Uhr", " March", " mars", "May", " of ", " de ", "Z", "+01:00", "T",
          "Monday", "x", "é", "_", "(", "1st", "12:30", "2024-05-01", "3/4/25", "17.30"]


def find_all(text: str, every: bool) -> list[tuple[int, int]]:
    saved = dates._may_follow
    if every:
        dates._may_follow = lambda _t, _b: True
    try:
        return [(f.start, f.end) for f in dates.DateTimeRecognizer().find(text, Prescan(text))]
    finally:
        dates._may_follow = saved


def old_ids():  # type: ignore[no-untyped-def]
    src = subprocess.run(["git", "show", "3b370322:src/tierwise/privacy/recognizers/ids.py"], check=True,
                         capture_output=True, text=True).stdout
    path = f"{tempfile.mkdtemp()}/old_ids.py"
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("old_ids", path)
    assert spec and spec.loader
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def cards(n: int, rng: random.Random) -> None:
    old, new = old_ids().CardRecognizer(), ids.CardRecognizer()
    differ = found = 0
    for _ in range(n):
        text = "".join(rng.choice("0123456789 -4") for _ in range(rng.randint(10, 80)))
        if rng.random() < 0.4:
            at = rng.randint(0, len(text))
            card = rng.choice(["4111 1111 1111 1111", "4111-1111-1111-1111", "5500 0000 0000 0004", "378282246310005"])
            text = text[:at] + card + text[at:]
        fo = sorted((f.start, f.end, f.score) for f in old.find(text))
        fn = sorted((f.start, f.end, f.score) for f in new.find(text))
        found += bool(fo)
        if fo != fn:
            differ += 1
            if differ <= 5:
                print("CARD DIFFER", repr(text), fo, fn)
    print(f"card runs {n}: with a card {found}, findings differ {differ}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    differ = found = 0
    for _ in range(a.n):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        old, new = find_all(text, True), find_all(text, False)
        found += bool(old)
        if old != new:
            differ += 1
            if differ <= 5:
                print("DIFFER", repr(text), old, new)
    print(f"date texts {a.n}: with a date {found}, findings differ {differ}")
    cards(a.n, rng)


if __name__ == "__main__":
    main()
