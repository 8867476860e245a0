"""privacy17's two speed-ups of the slowest input (digits between spaces), checked to find what they found before:
- the date recognizer tries its numeric pattern only at digit runs a date can go on from (`_may_follow`): on random
  texts of date pieces, against trying every digit run (the code before);
- the card recognizer's split of a long digit run bisects the ends each start can have: on random runs of digits,
  spaces and dashes (a valid card put in some), against `ids.py` at session 37's start (git show 3b370322).

    PYTHONPATH=src .venv/bin/python bench/privacy_round17_equiv.py --n 200000
"""

import argparse
import random

from git_source import module_at  # bench/git_source.py (the script's folder is on sys.path)

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
    return module_at("3b370322", "src/tierwise/privacy/recognizers/ids.py", "old_ids")


def _cover(found) -> set[int]:  # type: ignore[no-untyped-def]
    return {i for f in found for i in range(f.start, f.end)}


def cards(n: int, rng: random.Random) -> None:
    """Findings against the code before; a difference is `lost` when the old findings covered a character the new
    do not (privacy17's `_beyond` adds pieces after a number, so `more` is expected)."""
    old, new = old_ids().CardRecognizer(), ids.CardRecognizer()
    same = lost = more = found = planted = old_held = new_held = more_unplanted = 0
    for _ in range(n):
        text = "".join(rng.choice("0123456789 -4") for _ in range(rng.randint(10, 80)))
        span = None
        if rng.random() < 0.4:
            at = rng.randint(0, len(text))
            card = rng.choice(["4111 1111 1111 1111", "4111-1111-1111-1111", "5500 0000 0000 0004", "378282246310005"])
            text = text[:at] + card + text[at:]
            span = set(range(at, at + len(card)))
        fo, fn = list(old.find(text)), list(new.find(text))
        found += bool(fo)
        co, cn = _cover(fo), _cover(fn)
        if span is not None:  # a planted card: all its characters covered?
            planted += 1
            old_held += span <= co
            new_held += span <= cn
        if co - cn:
            lost += 1
            if lost <= 5:
                print("CARD LOST", repr(text), sorted((f.start, f.end) for f in fo), sorted((f.start, f.end) for f in fn))
        elif cn - co:
            more += 1
            more_unplanted += span is None
        else:
            same += 1
    print(f"card runs {n}: old found a card in {found}; covered the same {same}, new covers more {more} ({more_unplanted} without a planted card), lost {lost}")
    print(f"planted cards {planted}: wholly covered by the old code {old_held}, by the new {new_held}")


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
