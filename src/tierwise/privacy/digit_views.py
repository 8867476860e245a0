"""Digits written as something else (session 28, attack-privacy8): spelled as words (`four one one one one one one
one ...`, `five three six - two two - eight one four seven`, `two oh three dot zero dot ...`), or as the letters
that look like them inside a number (`4lll llll llll llll`, `SSN 536-22-8l47`, `2O3.O.ll3.45`: `O`/`o` for 0,
`l`/`I` for 1). A model reads either as the number at once; the patterns read no digit there.

Two more views, like `spaced.py`: a run is rewritten with digits and scanned by the structured recognizers (the
words before it kept as its cue, digits left out); a finding becomes one over the run as written.

- Words (English; round 9: French, Spanish, Italian, German, Swedish; session 30: Portuguese, Dutch): a run of digit words (and digit groups) one space, comma or dash apart, holding at least `_MIN_WORDS` digit
  words; words next to each other join (`four one` is `41`), a dash stays a dash, `dot`/`point` is a dot, a digit
  group stands apart (`four one five 555 2671` is `415 555 2671`).
- Look-alikes: a run of tokens made of digits and `O o l I` only (`.-/()+` and single spaces between them), with a
  token in it where a digit touches a look-alike (`4lll`, `2O3`, `8l47`): prose words (`lol`, `Ollie`, `I`) have no
  digit beside their letters, and a run without one is not read. At least seven digits after the rewrite.

Cost: one search each for the anchors (a digit word; a digit beside a look-alike) with the standard library's engine;
the run patterns only around anchors (windows merged): linear in the text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable

import regex

from tierwise.privacy.finding import Finding

_DIGIT_OF = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
             "seven": "7", "eight": "8", "nine": "9", "niner": "9"}
# Round 9: the digits in French, Spanish, Italian, German and Swedish (a card spelled `quatre un un un ...` went out
# unread). Left out: `null` (JSON's `[null, null, ...]`) and Swedish `en` (a word in three languages); a word two
# languages share means the same digit in both (`six`, `tre`).
for _lang in ("zéro un deux trois quatre cinq six sept huit neuf",
              "cero uno dos tres cuatro cinco seis siete ocho nueve",
              "zero uno due tre quattro cinque sei sette otto nove",
              "- eins zwei drei vier fünf sechs sieben acht neun",
              "noll ett två tre fyra fem sex sju åtta nio",
              # session 30: Portuguese and Dutch (`quatro um um um ...`, `vier een een een ...` went out unread)
              "zero um dois três quatro cinco seis sete oito nove",
              "nul een twee drie vier vijf zes zeven acht negen"):
    for _d, _word in enumerate(_lang.split()):
        if _word != "-":
            _DIGIT_OF.setdefault(_word, str(_d))
_DIGIT_OF.update({"fuenf": "5", "tva": "2", "atta": "8", "tres": "3"})  # as written without their accents
_W = "|".join(sorted(_DIGIT_OF, key=len, reverse=True))
_TOK = rf"(?:{_W}|[0-9]{{1,5}})"
_SEP = r"(?:\s*-\s*|\s+(?:dot|point)\s+|[ ,]{1,3})"
_WORD_RUN = re.compile(rf"(?i)(?<![A-Za-z0-9]){_TOK}(?:{_SEP}{_TOK}){{5,40}}(?![A-Za-z0-9])")
_WORD_PIECE = re.compile(rf"(?i)({_W}|[0-9]+)|(\s*-\s*)|(\s+(?:dot|point)\s+)|([ ,]+)")
_MIN_WORDS = 4
_CLUSTER = 4 * 12  # four digit words (`seven, seven, seven, seven`)
_REACH = 96  # around an anchor: a spelled card is ~80 characters

# Session 30: `|` for 1 too (`4|||-||||-...`, `536-22-8|47`); a table row or a list (`|1|2|3|`, `1|2|3`: three
# or more bars, none beside another) is not read.
_LOOK = str.maketrans("OolI|", "00111")
_LOOK_ANCHOR = re.compile(r"[0-9][OolI|]|[OolI|][0-9]")
_LOOK_RUN = re.compile(r"(?<![A-Za-z0-9|])[0-9OolI|]+(?:(?:[.\-/]| ?[()+] ?| )[0-9OolI|]+){0,12}(?![A-Za-z0-9|])")
_LOOK_REACH = 48
_GROUPS = re.compile(r"[ .\-/()+]+")
_FLAG_CHARS = frozenset("1248|")
_BARS_BETWEEN = re.compile(r"[0-9](?:\|[0-9])+(?:[ -][0-9](?:\|[0-9])+)*")  # `5|5|5|5 5|5|...`: a bar between digits
_LOOK_MASK = bytes(0x30 if 48 <= c <= 57 else 0x6C if chr(c) in "OolI|" else 0x2E for c in range(256))

_NOT_WORDS = re.compile(r"[^A-Za-z#:]+")
_CUE = 48
# Between runs in the one text scanned: no recognizer kept here reads a value over three line breaks (encoded.py).
_SEP = "\n\n\n"
_KEEP = frozenset({"CREDIT_CARD", "US_SSN", "PHONE_NUMBER", "IP_ADDRESS", "US_BANK_NUMBER", "US_PASSPORT",
                   "US_DRIVER_LICENSE", "US_ITIN", "UK_NHS", "MEDICAL_LICENSE"})


def _windows(anchors: Iterable[_At], n: int, reach: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in anchors:
        lo, hi = max(0, m.start() - reach), min(n, m.end() + reach)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


class _Batch:
    """Every run's rewrite behind its cue words, in one text scanned once (review28e: a scan per run was ~300 µs, so
    a megabyte of short look-alike runs, `1l1l1l1;` over and over, cost 13 s); findings mapped back per run."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[str] = []
        self.starts: list[int] = []
        self.runs: list[tuple[int, int, int, int, bool]] = []  # (cue length, joined length, start, end, one for one)
        self.at = 0

    def add(self, start: int, end: int, joined: str, one_for_one: bool) -> None:
        cue = _NOT_WORDS.sub(" ", self.text[max(0, start - _CUE):start]) + " "
        self.parts.append(cue + joined + _SEP)
        self.starts.append(self.at)
        self.runs.append((len(cue), len(joined), start, end, one_for_one))
        self.at += len(cue) + len(joined) + len(_SEP)

    def findings(self, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
        """Findings over the runs (over the characters the run holds when the rewrite is one for one)."""
        out: list[Finding] = []
        if not self.runs:
            return out
        for f in scan("".join(self.parts)):
            i = bisect_right(self.starts, f.start) - 1
            cue, n, start, end, one_for_one = self.runs[i]
            a, b = f.start - self.starts[i] - cue, f.end - self.starts[i] - cue
            if f.entity not in _KEEP or b <= 0 or b > n:
                continue
            if one_for_one:
                out.append(Finding(f.entity, start + max(0, a), start + b, f.score, f.detector))
            else:
                out.append(Finding(f.entity, start, end, f.score, f.detector))
        return out


class _At:
    """An anchor's span (what `_windows` reads of a match)."""

    __slots__ = ("a", "b")

    def __init__(self, a: int, b: int) -> None:
        self.a, self.b = a, b

    def start(self) -> int:
        return self.a

    def end(self) -> int:
        return self.b


def _word_anchors(text: str) -> list[_At]:
    """Each digit word on word bounds, in order, found with `str.find` per word over the lower-cased text (a
    case-blind alternation tried at every position cost ~330 µs per 8,000 characters; this ~20)."""
    low = text.lower()
    out: list[_At] = []
    for w in _present(low):
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or not low[i - 1].isalpha()) and (j == len(low) or not low[j].isalpha()):
                out.append(_At(i, j))
            i = low.find(w, j)
    out.sort(key=lambda m: m.a)
    return out


# review29d: a `str.find` per word, 60 words since round 9, cost ~330 µs per 8,000 characters; only the words the
# text holds are looked for. The text's words: its bytes with every ASCII non-letter as a space, split (C speed);
# a token with non-ASCII bytes is split again on `str.isalpha`, the bound `_word_anchors` reads.
_NOT_LETTER = bytes(0x20 if c < 128 and not chr(c).isalpha() else c for c in range(256))
_WORD_BYTES = frozenset(w.encode() for w in _DIGIT_OF)
_LETTERS = regex.compile(r"\p{L}+")  # exactly what `str.isalpha` reads as a letter


def _present(low: str) -> set[str]:
    """The digit words that occur in `low` as whole words."""
    tokens = set(low.encode("utf-8", "surrogatepass").translate(_NOT_LETTER).split())
    out = {t.decode() for t in tokens & _WORD_BYTES}
    for t in tokens:
        if not t.isascii():
            out.update(w for w in _LETTERS.findall(t.decode("utf-8", "surrogatepass")) if w in _DIGIT_OF)
    return out


def _look_anchors(text: str) -> list[_At]:
    """Each digit beside a look-alike letter, found with `bytes.find` over the text mapped a byte a class."""
    mask = text.encode("latin-1", errors="replace").translate(_LOOK_MASK)
    out: list[_At] = []
    for key in (b"0l", b"l0"):
        i = mask.find(key)
        while i >= 0:
            out.append(_At(i, i + 2))
            i = mask.find(key, i + 1)
    out.sort(key=lambda m: m.a)
    return out


def _clusters(anchors: list[_At]) -> Iterable[_At]:
    """The anchors that start `_MIN_WORDS` digit words within `_CLUSTER` characters (prose has `one` and `two`
    here and there; a spelled number has them one after another)."""
    for i in range(len(anchors) - _MIN_WORDS + 1):
        if anchors[i + _MIN_WORDS - 1].start() - anchors[i].start() <= _CLUSTER:
            yield anchors[i]


def _spelled(text: str, batch: _Batch) -> None:
    done = 0
    for lo, hi in _windows(_clusters(_word_anchors(text)), len(text), _REACH):
        for m in _WORD_RUN.finditer(text, max(lo, done), hi):
            done = m.end()
            parts: list[str] = []
            words = 0
            prev_word = False
            for p in _WORD_PIECE.finditer(m.group()):
                tok, dash, dot, space = p.groups()
                if tok is not None:
                    is_word = not tok[0].isdigit()
                    words += is_word
                    if parts and parts[-1] == " " and is_word and prev_word:
                        parts.pop()  # `four one`: one number
                    parts.append(_DIGIT_OF[tok.lower()] if is_word else tok)
                    prev_word = is_word
                elif dash is not None:
                    parts.append("-")
                elif dot is not None:
                    parts.append(".")
                elif space is not None:
                    parts.append(" ")
            if words >= _MIN_WORDS:
                batch.add(m.start(), m.end(), "".join(parts), False)


def _look_alike(text: str, batch: _Batch) -> None:
    done = 0
    for lo, hi in _windows(_look_anchors(text), len(text), _LOOK_REACH):
        for m in _LOOK_RUN.finditer(text, max(lo, done), hi):
            done = m.end()
            run = m.group()
            if _LOOK_ANCHOR.search(run) is None:
                continue
            if _table_bars(run):
                # table cells or a list, not a number; but single digits between bars (`5|5|5|...|4`, round 11)
                # are a number too with the bars read as separators, a card's checksum deciding: in groups, or with
                # a digit no bit flag has (`mode = 4|1|1|...|1`, flags joined by bars, stays out)
                if _BARS_BETWEEN.fullmatch(run) and 13 <= sum(c.isdigit() for c in run) <= 19 and (
                        " " in run or "-" in run or not set(run) <= _FLAG_CHARS):
                    batch.add(m.start(), m.end(), run.replace("|", ""), False)
                continue
            joined = run.translate(_LOOK)
            if sum(c.isdigit() for c in joined) < 7:
                continue
            batch.add(m.start(), m.end(), joined, True)


def _table_bars(run: str) -> bool:
    """Three bars or more, none beside another, between cells (`|1|2|3|`, `| 4 | 1 |`, `1|2|4|8`). review30f: not
    bars inside a number's groups (`4|11 1|11 11|1 1111`: groups of at most 6, no bar at a group's edge)."""
    if run.count("|") < 3 or "||" in run:
        return False
    groups = _GROUPS.split(run)
    return len(groups) < 2 or any(len(g) > 6 or g[:1] == "|" or g[-1:] == "|" for g in groups)


def digit_view_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Values whose digits are spelled as words or written as look-alike letters; spans in `text`."""
    batch = _Batch(text)
    _spelled(text, batch)
    _look_alike(text, batch)
    return batch.findings(scan)
