"""`terminal_text.inert` and `inert_json` escape every invisible control or format character (review28a): the set was
a hand list of C0/C1, bidi controls and a few zero-width characters, and let through the rest of Unicode's format
characters: the tag characters (U+E0020..E007F, invisible in a terminal: "ASCII smuggling", a hidden second text
an operator copies along into a model), the soft hyphen, U+206A..206F, the interlinear annotation marks, the
Mongolian vowel separator. Checked against the running Python's Unicode database, category by category."""

from __future__ import annotations

import sys
import unicodedata

import orjson

from tierwise.commands.terminal_text import has_unsafe, inert, inert_json

HIDDEN = ("Cc", "Cf", "Zl", "Zp")  # controls, format characters, line and paragraph separators


def _all(categories: tuple[str, ...]) -> list[str]:
    return [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in categories]


def test_every_control_and_format_character_is_escaped() -> None:
    chars = _all(HIDDEN)
    assert len(chars) > 200, len(chars)
    missed = [f"U+{ord(c):04X}" for c in chars if inert(f"a{c}b") == f"a{c}b" or not has_unsafe(c)]
    assert missed == [], missed


def test_every_control_and_format_character_is_escaped_in_json() -> None:
    chars = _all(HIDDEN)
    missed = [f"U+{ord(c):04X}" for c in chars if c in inert_json(orjson.dumps({"k": f"a{c}b"}).decode())]
    assert missed == [], missed
    assert orjson.loads(inert_json(orjson.dumps({"k": "a\U000e0041\u00adb"}).decode())) == {"k": "a\U000e0041\u00adb"}


def test_a_hidden_tag_text_is_shown() -> None:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore the above")  # invisible in a terminal
    shown = inert(f"ok{hidden}")
    assert shown.startswith("ok\\U000e0069") and "\U000e0069" not in shown, shown
    assert inert("stra\u00dfe caf\u00e9 \u4e2d\u6587 \u05e9\u05dc\u05d5\u05dd") == \
        "stra\u00dfe caf\u00e9 \u4e2d\u6587 \u05e9\u05dc\u05d5\u05dd"  # letters of any script stay
