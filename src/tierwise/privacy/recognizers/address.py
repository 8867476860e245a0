"""Street addresses in many languages: a house number next to a street-type word, then the unit,
city, region, country and postcode lines that follow.

Anchors (any one starts an address):
- number + words + street type: `221B Baker Street`, `18 McPherson Road`, `1600 Pennsylvania Ave`;
- street type + words + number: `Rue des Lilas 12`, `Via Roma 131`, `Calle Mayor 5`, `ul. Słowicza 10`;
- compound street word + number: `Friedhofstrasse 33`, `Drottninggatan 5`, `Kiannonkatu 98`,
  `Fagradalsbraut 71`, `Peter Zuidhove 188` (Dutch/Nordic/German suffixes);
- post boxes and military addresses: `PO Box 123`, `Postbox 53`, `PSC 2721, Box 8637`,
  `Unit 1293 Box 4311`, `FPO AA 68422`.
An anchor is then extended over `Apt./Suite/Unit/Floor N` and over up to four following
segments (after a comma or a line break) that look like a city, a region code, a country or a
postcode. A short cue (`address:`, `lives at`, `located at`, `send it to`) lets an anchor start
with a bare house number and a capitalised name.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

import ahocorasick_rs
import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan, prescan_of

# Street-type words (whole words, case-insensitive), several languages.
_TYPES = (
    "street|st|road|rd|avenue|ave|av|lane|ln|drive|dr|way|court|ct|place|pl|boulevard|blvd|terrace|"
    "crescent|cres|square|sq|highway|hwy|parkway|pkwy|close|row|walk|mews|grove|gardens|hill|park|circle|"
    "cir|trail|trl|path|alley|plaza|point|pike|loop|run|view|ridge|heights|estate|green|glen|wynd|"
    "strasse|straße|str|gasse|weg|platz|allee|ring|damm|ufer|chaussee|"
    "rue|chemin|impasse|allée|quai|cours|route|"
    "via|viale|piazza|corso|vicolo|largo|"
    "calle|avenida|avda|paseo|plaza|carrera|camino|"
    "rua|travessa|praça|estrada|largo|alameda|"
    "gatan|gata|vägen|väg|gränd|torget|stig|"
    "vej|gade|allé|"
    "katu|tie|kuja|polku|"
    "straat|laan|plein|gracht|kade|singel|"
    "ulica|ul|aleja|al|út|utca|tér|trg|cesta|ulice|náměstí|"
    "odos|leoforos|"
    "braut|gata|vegur|stræti"
)
# Compound street names: a word ending in one of these, then a number.
_SUFFIXES = (
    "strasse|straße|str\\.|gasse|weg|platz|allee|ring|damm|ufer|"
    "gatan|vägen|gränd|torget|stigen|backen|"
    "vej|gade|"
    "katu|tie|kuja|polku|"
    "straat|laan|plein|gracht|kade|singel|hove|dreef|"
    "braut|gata|vegur|stræti|skálinn|"
    "utca|út"
)
_PREFIX_TYPES = (
    "rue|chemin|impasse|allée|quai|cours|route|avenue|av|boulevard|bd|place|"
    "via|viale|piazza|corso|vicolo|largo|strada|"
    "calle|avenida|avda|paseo|plaza|carrera|camino|ronda|"
    "rua|travessa|praça|estrada|alameda|"
    "ulica|ul|aleja|al|"
    "odos|leoforos|λ|οδός|λεωφόρος"
)
_WORD = r"[^\W\d_][\w'’.-]*"
_CAP = r"\p{Lu}[\p{L}'’.-]*"
_PART = r"(?:de|del|de\ la|des|du|di|della|dos|das|do|da|van|von|der|den|la|le|l'|al|el|los|las|y)"
_NUM = r"\d{1,5}(?:[ -]?[A-Za-z](?![\w]))?(?:[/-]\d{1,4})?"
_LEAD = r"(?:\d{1,5}\s+)?"  # a second number before the house number (Faker's building numbers)
_UNIT = (
    r"(?:,?[ \t]*|[ \t]*\n[ \t]*>?[ \t]*)(?:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|bldg|building|#|no|"
    r"nr|n°|piso|etage|lgh|app)\.?[ \t]*#?[ \t]*\d{1,5}[A-Za-z]?(?![\w])"
)

# Anchors are found around house numbers rather than by scanning every word of the text:
# number-first shapes are matched AT each digit run, word-first shapes in a short window
# ending at it, keyword shapes (military, "the corner of") only where their keyword occurs.
_NUMBER_FIRST = regex.compile(
    rf"""(?ix)
      {_LEAD}{_NUM}\s+(?:{_WORD}\s+){{0,4}}(?:{_TYPES})\b\.?
          (?:\s+{_PART}?\s*(?-i:{_CAP})){{0,3}}(?:\s+\d{{1,5}}[A-Za-z]?\b\.?)?
    | {_LEAD}{_NUM}\s+{_WORD}(?:{_SUFFIXES})\b(?:\.?\s+{_NUM}\.?(?![\w]))?
    | (?P<g>{_LEAD}\d{{1,5}}\s+(?:{_WORD}\s+){{1,3}}\d{{1,4}}[A-Za-z]?\.?(?![\w]))
    """
)
# The third shape alone (number, words, number), for numbers with no street word after them.
_GENERIC_FIRST = regex.compile(
    rf"""(?ix)(?P<g>{_LEAD}\d{{1,5}}\s+(?:{_WORD}\s+){{1,3}}\d{{1,4}}[A-Za-z]?\.?(?![\w]))"""
)
_PREFIX_SET = frozenset(_PREFIX_TYPES.split("|"))
_TYPE_SET = frozenset(t for t in _TYPES.split("|"))
_SUFFIX_TUPLE = tuple(x.replace("\\.", ".") for x in _SUFFIXES.split("|"))
_PARTICLES = frozenset("de del des du di della dos das do da van von der den la le al el los las y".split())
_BOX_WORDS = frozenset({"postbox", "postfach", "apartado", "casilla"})
_TOKEN = re.compile(r"[^\W\d_][\w'’.-]*|\d+")


def _word_first_start(text: str, a: int) -> int | None:
    """Start of a word-first anchor ending in the number at `a` (`Rue des Lilas 12`,
    `Friedhofstrasse 33`, `Villacher Strasse 89`, `Király u. 15`, `P.O. Box 287`), or None.
    Looks at up to five tokens before the number, on the same line, separated by spaces only."""
    j = a - 1
    while j >= 0 and text[j] in " \t":
        j -= 1
    if j < 0 or j == a - 1 or not (text[j].isalpha() or text[j] == "."):
        return None  # a word-first anchor has a word, then spaces, right before its number
    line = text.rfind("\n", max(0, a - _WINDOW), a) + 1
    lo = max(line, a - _WINDOW)
    toks = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text, lo, a)]
    # keep the trailing run of tokens joined by whitespace only, ending right before the number
    run: list[tuple[int, int, str]] = []
    pos = a
    for t in reversed(toks):
        gap = text[t[1]:pos]
        if (gap and not gap.isspace()) or (not gap and pos == a):
            break
        run.append(t)
        pos = t[0]
        if len(run) == 5:
            break
    if not run:
        return None
    last = run[0][2].lower()
    start: int | None = None
    if last.rstrip(".") in _SUFFIX_BOX_LAST:
        if len(run) > 1 and run[1][2].lower().replace(".", "") in ("po", "p.o"):
            start = run[1][0]
        elif last.rstrip(".") != "box":
            start = run[0][0]
    elif last == "u.":
        start = run[min(len(run) - 1, 2)][0] if len(run) > 1 else None
    elif last.endswith(_SUFFIX_TUPLE) and not last.isdigit():
        bare = last.rstrip(".")
        if bare in _TYPE_SET:  # the street-type word alone: "Villacher Strasse 89", not "ring 08-123"
            if len(run) < 2 or not run[1][2][:1].isupper():
                return None
            start = run[1][0]
        else:
            start = run[0][0]
    else:
        for s0, _e0, w in run[:4]:
            if w.lower().rstrip(".") in _PREFIX_SET:
                start = s0
                break
            if w[:1].isdigit():
                break
    if start is None:
        return None
    # A building number before it ("0912 P.O. Box 287", "3247 Rua Igreja 25").
    m = regex.search(r"(?<![\w.,-])\d{1,5}\s+$", text[max(line, start - 8):start])
    if m:
        start = max(line, start - 8) + m.start()
    return start


_SUFFIX_BOX_LAST = frozenset({"box"}) | _BOX_WORDS

_KEYWORD_WORDS = ("psc", "unit", "cmr", "usns", "usnv", "uss", "usnc", "uscgc", "usgc", "apo", "fpo", "dpo",
                  "the corner of")
# Every word an anchor depends on, found in one Aho-Corasick pass over `Prescan.word_mask`
# (letters only, padded): street types and prefixes and the keywords of military addresses as
# whole words (` w `), compound-name endings, post-box words and `u.` (Hungarian `utca`) at the
# end of a word (`w `). Words with letters beyond Latin-1 are found as plain substrings of the
# lower-cased text instead (the mask has no such letters).
def _latin1(w: str) -> bool:
    return all(ord(c) < 256 for c in w)


_WHOLE_WORDS = _TYPE_SET | _PREFIX_SET
_END_WORDS = {w.rstrip(".") for w in (*_SUFFIX_TUPLE, *_SUFFIX_BOX_LAST, "u.")}
_AC_PATTERNS: list[str] = []
_AC_KIND: list[tuple[bool, bool, bool]] = []  # (keyword, whole street word, word ending)
for _w in sorted(_WHOLE_WORDS | set(_KEYWORD_WORDS)):
    if _latin1(_w):
        _AC_PATTERNS.append(f" {_w} ")
        _AC_KIND.append((_w in _KEYWORD_WORDS, _w in _WHOLE_WORDS, False))
for _w in sorted(_END_WORDS):
    if _latin1(_w):
        _AC_PATTERNS.append(f"{_w} ")
        _AC_KIND.append((False, False, True))
_AC = ahocorasick_rs.AhoCorasick(_AC_PATTERNS)
_OTHER_WORDS = sorted(w for w in _WHOLE_WORDS | _END_WORDS if not _latin1(w))
_AC_OTHER = ahocorasick_rs.AhoCorasick(_OTHER_WORDS)
_SEVEN_WORDS = regex.compile(r"\S+(?:\s+\S+){0,6}")
_DOTS_BLANKS = regex.compile(r"\.*[ \t]*")
# A number a number-first anchor may start at: a whole digit run with a word close after it
# (`_WORD_SOON`); `_anchors` also wants no letter, digit, `_`, `.`, `,` or `-` before it.
_NF_START = regex.compile(r"(?<![0-9])[0-9]+(?=[A-Za-z]?(?:[/-][0-9]{1,4})?\s+(?:[0-9]{1,5}\s+)?[^\W\d_])")


class _StreetWords:
    """Where the words anchors depend on occur in one text, so the anchor patterns run only at
    numbers that have such a word near them (the patterns decide; this only rules numbers out).

    A number can end a word-first anchor only when the word right before it ends in a street
    suffix, a post-box word or `u.`, or a street prefix word stands among the words before it
    (within `_WINDOW`); a number-first anchor other than the generic shape needs a street type
    word or a suffix after it. When lower-casing changes the text's length nothing is ruled out.
    """

    __slots__ = ("text", "keywords", "_ends", "_ends_sorted", "_whole_starts", "_all")

    def __init__(self, text: str, pre: Prescan) -> None:
        self.text = text
        self._all = not pre.lower_exact
        self.keywords: list[int] = []
        self._ends: set[int] = set()  # where the letters of a suffix / post-box word / `u.` end
        self._whole_starts: list[int] = []  # starts of street type / prefix words standing alone
        if self._all:
            self.keywords = [m.start() for m in _KEYWORD.finditer(text)]
        else:
            # In the mask ` w ` at (a, b) is the word at a .. b - 2 of the text, `w ` ends at b - 2.
            for i, a, b in _AC.find_matches_as_indexes(pre.word_mask, overlapping=True):
                keyword, whole, suffix = _AC_KIND[i]
                if keyword:
                    self.keywords.append(a)
                if whole:
                    self._whole_starts.append(a)
                if suffix:
                    self._ends.add(b - 2)
            if not text.isascii():
                for _i, a, b in _AC_OTHER.find_matches_as_indexes(pre.lower, overlapping=True):
                    self._whole_starts.append(a)
                    self._ends.add(b)
            self.keywords.sort()
            self._whole_starts.sort()
        self._ends_sorted = sorted(self._ends)

    def word_first_runs(self, runs: list[tuple[int, int]]) -> dict[int, int]:
        """start -> end of the digit runs that may end a word-first anchor: right after a word
        ending in a suffix (then dots and blanks only), or within `_WINDOW` after a prefix word."""
        if self._all:
            return dict(runs)
        starts = [a for a, _b in runs]
        out: dict[int, int] = {}
        for e in self._ends_sorted:
            p = _DOTS_BLANKS.match(self.text, e).end()  # type: ignore[union-attr]  # matches empty
            k = bisect_left(starts, p)
            if k < len(starts) and starts[k] == p:
                out[p] = runs[k][1]
        for s in self._whole_starts:
            k = bisect_right(starts, s)
            while k < len(starts) and starts[k] <= s + _WINDOW:
                out[starts[k]] = runs[k][1]
                k += 1
        return out

    def street_word_after(self, a: int, b: int) -> bool:
        """Whether a street type word starts, or a suffix ends, within the seven words from `a`
        (a number-first anchor's building number, house number, up to four words and the type)."""
        if self._all:
            return True
        m = _SEVEN_WORDS.match(self.text, a)
        reach = m.end() if m else b
        k = bisect_right(self._whole_starts, b)
        if k < len(self._whole_starts) and self._whole_starts[k] < reach:
            return True
        k = bisect_right(self._ends_sorted, b)
        return k < len(self._ends_sorted) and self._ends_sorted[k] <= reach


_KEYWORD = re.compile(r"(?i)\b(?:psc|unit|cmr|usns|usnv|uss|usnc|uscgc|usgc|apo|fpo|dpo|the corner of)\b")
_KEYWORD_FIRST = regex.compile(
    rf"""(?ix)
      (?:psc|unit|cmr)\s+\d{{3,5}},?\s+box\s+\d{{2,5}}(?:\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}})?
    | (?:usns|usnv|uss|usnc|usc?gc)\s+{_WORD}(?:\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}})?
    | (?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}}
    | the\ corner\ of\ [^\n,.;:!?]{{3,60}}?\ and\ (?:{_WORD})(?:\s+{_WORD}){{0,2}}(?=\s*(?:[\n,.;:!?]|$))
    """
)
_DIGIT_RUN = re.compile(r"\d+")
# Number-first anchors need a word within the next few characters (cheap pre-check).
_WORD_SOON = re.compile(r"[A-Za-z]?(?:[/-]\d{1,4})?\s+(?:\d{1,5}\s+)?[^\W\d_]")
_NUM_END = re.compile(rf"{_NUM}\.?")
_WINDOW = 90  # characters before a number a word-first anchor may start

# The generic anchor (number, words, number) needs one more sign of an address.
_ADDRESS_CUE = regex.compile(
    r"(?i)(?:address|adress|adresse|dirección|indirizzo|lives?|living|located|location|sent|send|ship|deliver|"
    r"meet|moved|billing|return|office|restaurant|station|arrived|drops?|stop|it's in|is in|is at|at|on|to|"
    r"user|:)\W{0,3}$"
)
_UNIT_RX = regex.compile(_UNIT, regex.I)
# What may follow an anchor as further address segments (after ", " or a line break).
_SEG = regex.compile(
    r"""(?x)
    (?:[ \t]*,[ \t]*(?:\n[ \t]*)?|[ \t]*\n[ \t]*(?:\n[ \t]*)?(?:>[ \t]*)?|[ \t]+)
    (?P<s>
        [A-Z]{2,3}(?:[ \t]+\d{4,6})?                     # region code, with a postcode
      | nan(?:[ \t]+\d{4,6})?                            # an empty field in generated data
      | \d{4,6}(?:[ -]\d{3,4})?                          # postcode
      | \d{3}[ ]\d{2}(?=[ \t]+\p{Lu})                    # Swedish/Czech/Greek postcode, then the city
      | [A-Z]\d[A-Z][ \t]?\d[A-Z]\d                      # Canadian postcode
      | [A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}             # UK postcode
      | (?:\d{4,6}[ \t]+)?(?P<w>\p{Lu}[\p{L}'’.∆-]*(?:[ -]\p{Lu}[\p{L}'’.∆-]*|[ ](?:de|del|da|do|di|la|le|am|an|im|sur|en)[ ]\p{Lu}[\p{L}'’.-]*){0,3}
        (?:[ \t]*\([\p{L} ]+\))?)(?:[ \t]+\d{4,6})?
    )
    (?![\w])
    """
)
# The standard library's engine (review28e): the `regex` module's `match` looked ahead for the required `,` to the end of
# the text, so a text with no comma cost O(length) per anchor (`id 1234 5678 x` repeated: 9.5 s for 800 KB).
_SEG_AFTER_COMMA = re.compile(r"[ \t]*,[ \t]*(?P<s>\d{1,3}(?:[ \t\n]+\d{4,6})?)(?![\w])")
_NOT_STREET_WORDS = frozenset(
    """january february march april may june july august september october november december jan feb mar apr
    jun jul aug sep sept oct nov dec januar februar märz mai juni juli oktober dezember janvier février mars
    avril juin juillet août septembre octobre novembre décembre enero febrero marzo abril mayo junio julio
    agosto septiembre octubre noviembre diciembre and or of the to in on at for with by from than x times
    percent per cent minutes hours days weeks months years seconds pm am kg km mb gb items people""".split()
)
_STOP_WORDS = frozenset({
    "the", "and", "or", "but", "phone", "tel", "mobile", "fax", "email", "e-mail", "website", "please", "thanks",
    "thank", "i", "we", "you", "he", "she", "it", "they", "my", "our", "your", "is", "are", "was", "name",
    "address", "desk", "office", "user", "can", "could", "would", "will", "do", "does", "did", "what", "where",
    "personal", "date", "when", "in", "on", "at", "for", "from", "to", "it's", "i'm", "i'll", "bot", "mr", "mrs",
    "ms", "dr", "hello", "hi", "dear", "regards", "best", "this", "that", "these", "there", "here",
})


class AddressRecognizer:
    """Street addresses; with `split_places`, the city/country lines after the street are
    returned as LOCATION findings of their own (the rest stays STREET_ADDRESS)."""

    name = "context.address"
    entities = frozenset({"STREET_ADDRESS"})

    def __init__(self, split_places: bool = False) -> None:
        self.split_places = split_places

    def _anchors(self, text: str, pre: Prescan) -> list[tuple[int, int, bool]]:
        """(start, end, generic) of each anchor, non-overlapping, sorted."""
        words = _StreetWords(text, pre)
        taken: list[tuple[int, int, bool]] = []
        # military addresses and "the corner of" first: they contain numbers
        for k in words.keywords:
            if k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_"):
                continue
            if taken and k < taken[-1][1]:
                continue
            m = _KEYWORD_FIRST.match(text, k)
            if m:
                taken.append((m.start(), m.end(), False))
        found: list[tuple[int, int, bool]] = []
        n = len(text)
        # Only numbers where some anchor shape can end or start are tried (in text order).
        word_first = words.word_first_runs(pre.digit_runs)
        number_first = {
            m.start(): m.end() for m in _NF_START.finditer(text)
            if m.start() == 0 or not (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_.,-")
        }
        for a in sorted(word_first.keys() | number_first.keys()):
            b = word_first.get(a) or number_first[a]
            if (found and a < found[-1][1]) or (taken and any(s <= a < e for s, e, _ in taken)):
                continue  # inside an anchor already found
            best: tuple[int, int, bool] | None = None
            lo = max(0, a - _WINDOW)
            if found:
                lo = max(lo, found[-1][1])
            ws = _word_first_start(text, a) if a in word_first else None
            if ws is not None and ws >= lo:
                e = _NUM_END.match(text, a)
                end = e.end() if e else b
                if end >= n or not text[end].isalnum():
                    best = (ws, end, False)
            if best is None and a in number_first:
                # Without a street word close after the number only the generic shape can match.
                m = (_NUMBER_FIRST if words.street_word_after(a, b) else _GENERIC_FIRST).match(text, a)
                if m:
                    best = (m.start(), m.end(), m.group("g") is not None)
            if best is not None and not (taken and any(s < best[1] and best[0] < e for s, e, _ in taken)):
                found.append(best)
        return sorted(found + taken)

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        if not pre.digit_runs and "corner of" not in text:
            return
        for start, end, generic in self._anchors(text, pre):
            ext, places = self._extend(text, end)
            score = 0.92
            if generic:
                # number + words + number: an address only with a cue before or a unit/lines after,
                # and never a date or a count ("12 March 2024", "3 apples and 4").
                words = {w.lower().strip(".,") for w in text[start:end].split()}
                if words & _NOT_STREET_WORDS:
                    continue
                if ext == end and not _ADDRESS_CUE.search(text, max(0, start - 24), start):
                    continue
                score = 0.8
            if not self.split_places or not places:
                yield Finding("STREET_ADDRESS", start, ext, score, self.name)
                continue
            pos = start
            for a, b in places:
                yield from self._piece(text, pos, a, score)
                yield Finding("LOCATION", a, b, score, self.name)
                pos = b
            yield from self._piece(text, pos, ext, score)

    def _piece(self, text: str, a: int, b: int, score: float) -> Iterator[Finding]:
        while a < b and text[a] in " \t\n,>.":
            a += 1
        while b > a and text[b - 1] in " \t\n,>.":
            b -= 1
        if b > a and any(c.isalnum() for c in text[a:b]):
            yield Finding("STREET_ADDRESS", a, b, score, self.name)

    def _extend(self, text: str, end: int) -> tuple[int, list[tuple[int, int]]]:
        places: list[tuple[int, int]] = []
        u = _UNIT_RX.match(text, end)
        if u:
            end = u.end()
        for _ in range(5):
            s = _SEG.match(text, end)
            if not s:
                break
            seg = s.group("s")
            first = seg.split()[0].lower().strip(".,")
            if first in _STOP_WORDS:
                break
            if s.group("w"):
                pa, pb = s.span("w")
                cut = text.find(". ", pa, pb)  # "Madrid. Nací ...": the place ends at the sentence
                if cut >= 0:
                    pb = cut
                while pb > pa and text[pb - 1] in ".,":
                    pb -= 1
                if pb > pa:
                    places.append((pa, pb))
                if cut >= 0:
                    end = cut
                    break
            end = s.end()
            c = _SEG_AFTER_COMMA.match(text, end)
            if c:
                end = c.end()
            u = _UNIT_RX.match(text, end)
            if u:
                end = u.end()
        return end, places
