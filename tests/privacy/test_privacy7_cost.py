"""attack-privacy7 "cost brought down": the cheaper searches read the same runs as the whole-text ones.

`layout._stretches` narrows the layout run search to stretches that can hold a run with a layout gap and 8 digits;
`encoded._seeds` tries the split-base64 seed pattern only where a pair of classes is. Both must find exactly what
the pattern over the whole text finds (the findings then follow unchanged).
"""

from __future__ import annotations

import random

from tierwise.privacy import encoded, layout

_NO_DIGITS = str.maketrans("", "", "0123456789")


def _kept_runs_whole(t: str) -> list[tuple[int, int]]:
    return [m.span() for m in layout._RUN.finditer(t)
            if layout._LAYOUT_RX.search(t, m.start(), m.end()) and len(m.group()) - len(m.group().translate(_NO_DIGITS)) >= 8]


def _kept_runs_stretches(t: str) -> list[tuple[int, int]]:
    return [m.span() for a, b in layout._stretches(t) for m in layout._RUN.finditer(t, a, b)
            if layout._LAYOUT_RX.search(t, m.start(), m.end()) and len(m.group()) - len(m.group().translate(_NO_DIGITS)) >= 8]


def test_layout_stretches_hold_every_run_the_whole_text_search_keeps() -> None:
    rng = random.Random(3)
    parts = ["1", "2", "4", "a", "Z", "-", "\t", "\n", " ", "|", "*", "_", "<br>", '<td class="a.b">', "</td>", "<",
             ">", ".", "é", ",", "1111 ", "<a1111 "]
    for _ in range(5000):
        s = "".join(rng.choice(parts) for _ in range(rng.randint(0, 40)))
        assert _kept_runs_stretches(s) == _kept_runs_whole(s), repr(s)
    table = 'card\n<table><tr><td style="width:1.5em">4111</td><td>1111</td><td>1111</td><td>1111</td></tr></table>.'
    assert _kept_runs_stretches(table) == _kept_runs_whole(table) != []


def test_split_base64_seeds_are_the_whole_text_seeds() -> None:
    rng = random.Random(1)
    alphabet = "aB1=+/_- \n.x9Zqé"
    for _ in range(5000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert [m.span() for m in encoded._seeds(s)] == [m.span() for m in encoded._SEED.finditer(s)], repr(s)
    for n in (10, 100, 5000):  # a long stretch whose pair ends it: its start found over the reversed text
        for s in ("a" * n + "1" + " b2" * 3, "x " + "=" * 3 + "a" * n + "B" + "==", "a1" * n, "é" + "a" * n + "1"):
            assert [m.span() for m in encoded._seeds(s)] == [m.span() for m in encoded._SEED.finditer(s)]
