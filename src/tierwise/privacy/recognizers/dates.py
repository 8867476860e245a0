"""Dates and times in general (`DATE_TIME`), in several languages.

What counts: ISO dates and timestamps (`2000-04-16 11:34:35`, `2024-05-01T09:00Z`); numeric dates
with `/`, `.` or `-` (`2/8/1935`, `12.03.1985`, `31-12-2024`; day and month must be possible);
dates with a month name in English, German, French, Spanish, Italian, Dutch, Swedish,
Portuguese (`12 March 1985`, `March 12`, `1er mai 2024`, `März 2024`); weekdays in the same
languages (`Tuesday`, `Montag`, `lundi`); clock times (`11:34`, `9:05:12`, `5 pm`, `17.30 Uhr`);
and years 1800-2099 after a word that introduces a year (`in 1977`, `during 1971`, `since 2017`,
`of 2001`, `a 2017 film`, `im Jahr 1977`, `en 1977`) or as a decade (`the 1990s`).

A date alone rarely identifies anyone, and requests are full of them (deadlines, versions,
schedules), so `DATE_TIME` is in no data class by default; the class `dates` (or listing
`DATE_TIME` in a class) turns it on, e.g. for clinical notes, where HIPAA's Safe Harbor counts
every date tied to a patient. A date after a birth cue is also `DATE_OF_BIRTH` (in `pii` and
`phi`), which scores higher and wins the overlap.
"""

from __future__ import annotations

from collections.abc import Iterator

import ahocorasick_rs
import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.context import _MONTHS
from tierwise.privacy.recognizers.prescan import Prescan, prescan_of

_WEEKDAYS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    "montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag|"
    "lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|"
    "lunes|martes|miércoles|miercoles|jueves|viernes|sábado|sabado|domingo|"
    "lunedì|lunedi|martedì|martedi|mercoledì|mercoledi|giovedì|giovedi|venerdì|venerdi|sabato|domenica|"
    "maandag|dinsdag|woensdag|donderdag|vrijdag|zaterdag|zondag|"
    "måndag|tisdag|onsdag|torsdag|fredag|lördag|söndag|"
    "segunda-feira|terça-feira|terca-feira|quarta-feira|quinta-feira|sexta-feira"
)
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_MON = r"(?:0?[1-9]|1[0-2])"
_Y4 = r"(?:1[6-9][0-9]{2}|20[0-9]{2}|21[0-9]{2})"
_TIME = r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,6})?)?"
_AMPM = r"(?:\s?(?:[ap]\.?m\.?|[AP]\.?M\.?)(?![\w]))"
_TZ = r"(?:\s?(?:Z|UTC|GMT|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9]))"
_ORD = r"(?:st|nd|rd|th|er|e|\.|º|°)?"
# Words after which a lone four-digit number is a year (several languages).
_YEAR_CUES = (
    "in|of|since|during|from|until|till|by|before|after|around|circa|ca|c|year|years|early|late|mid|"
    "spring|summer|autumn|fall|winter|founded|established|est|born|died|class|a|an|the|between|and|to|"
    "im|jahr|jahre|seit|bis|von|vor|nach|anno|en|em|depuis|desde|hasta|até|ate|año|ano|année|annee|"
    "år|sedan|sinds|jaar|nel|dal|anno|del|de|du|dès|i|på|om"
)

# Shapes that start with a number.
_DATE_NUM = regex.compile(
    rf"""(?ix)
      (?:
        {_Y4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])(?:[T\ ]{_TIME}{_TZ}?)?
      | {_Y4}/{_MON}/{_DAY}(?:\ {_TIME})?
      | {_DAY}[./-]{_DAY}[./-]{_Y4}(?:,?\ {_TIME}{_AMPM}?)?
      | {_DAY}/{_DAY}/[0-9]{{2}}(?![0-9])
      | {_DAY}{_ORD}\s+(?:of\s+|de\s+)?(?:{_MONTHS})\.?(?:,?\s+(?:de\s+)?{_Y4})?
      | {_TIME}{_AMPM}?{_TZ}?(?:\ ?(?:uhr|h))?
      | (?:[1-9]|1[0-2]){_AMPM}
      | (?:[01]?[0-9]|2[0-3])[.h][0-5][0-9]\ ?(?:uhr|h)
      )
      (?![\w]|[/:][0-9])
    """
)
# Shapes that start with a weekday or a month name.
_DATE_WORD = regex.compile(
    rf"""(?ix)
      (?<![\w./:-])
      (?:
        (?:(?:{_WEEKDAYS}),?\s+)?{_DAY}{_ORD}\s+(?:of\s+|de\s+)?(?:{_MONTHS})\.?(?:,?\s+(?:de\s+)?{_Y4})?
      | (?:(?:{_WEEKDAYS}),?\s+)?(?:{_MONTHS})\.?\s+{_DAY}(?:st|nd|rd|th)?(?![0-9])(?:,?\s+{_Y4})?
      | (?:{_MONTHS})\.?\s+{_Y4}
      | (?:{_WEEKDAYS})
      )
      (?![\w]|[/:][0-9])
    """
)
_WORD_START = regex.compile(r"(?<!\w)\w")
_YEAR = regex.compile(r"(?i)(?<![\w$€£#.,:/-])(?:1[89][0-9]{2}|20[0-9]{2})(?P<s>s|'s)?(?![\w%]|[.,:/-][0-9])")
_YEAR_CUE = regex.compile(rf"(?i)(?:^|[^\w])(?:{_YEAR_CUES})\.?\s+$")
# Month names that are also everyday words: alone with a number they still need a capital.
_AMBIGUOUS_MONTHS = frozenset({"may", "mar", "jan", "sept", "dec", "mai", "maj", "mars", "juni", "juli", "août"})


_WORD_STARTS = sorted({w.split("-")[0] for w in f"{_WEEKDAYS}|{_MONTHS}".split("|") if all(ord(c) < 256 for c in w)})
_WORD_AC = ahocorasick_rs.AhoCorasick([f" {w} " for w in _WORD_STARTS])


def _may_follow(text: str, b: int) -> bool:
    """Whether a numeric date can start at a digit run ending at `b`: every shape of `_DATE_NUM` goes on from its
    first run of digits with a separator (`-/.:`), an ordinal, `am`/`h`/`uhr`, or spaces then a month name or `am`.
    privacy17: `1 1 1 ...` tried the whole pattern at every run (the detector's slowest input, digits between
    spaces); the whitespace walked here is the gap to the next run, so all the calls read the text once."""
    n = len(text)
    if b >= n:
        return False
    c = text[b]
    if not c.isspace():
        return c in _AFTER_RUN or c.isalpha()
    while b < n and text[b].isspace():
        b += 1
    return b < n and text[b].isalpha()


_AFTER_RUN = frozenset("-/.:º°")


class DateTimeRecognizer:
    name = "pattern.date_time"
    entities = frozenset({"DATE_TIME"})

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        # A date starts with a number, a weekday or a month name: the pattern is tried (anchored)
        # only at digit runs and at those words, never at every position of the text.
        starts = [(a, _DATE_NUM) for a, b in pre.digit_runs
                  if (a == 0 or not (text[a - 1].isalnum() or text[a - 1] in "_./:-")) and _may_follow(text, b)]
        if pre.lower_exact:
            starts += [(a, _DATE_WORD) for _i, a, _b in _WORD_AC.find_matches_as_indexes(pre.word_mask, overlapping=True)]
        else:  # offsets of the mask would not agree: try every word start
            starts += [(m.start(), _DATE_WORD) for m in _WORD_START.finditer(text)]
        end = -1
        for a, rx in sorted(set(starts), key=lambda x: x[0]):
            if a < end:
                continue
            m = rx.match(text, a)
            if m and self._keep(m.group()):
                end = m.end()
                yield Finding("DATE_TIME", a, end, 0.5, self.name)
        for a, b in pre.digit_runs:
            if b - a == 4:
                m = _YEAR.match(text, a)
                if m and (m.group("s") or _YEAR_CUE.search(text, max(0, a - 14), a)):
                    yield Finding("DATE_TIME", a, m.end(), 0.45, self.name)

    @staticmethod
    def _keep(s: str) -> bool:
        if s.isdigit():
            return False
        head = s.split(None, 1)[0].rstrip(".,").lower()
        # "may 2" in "you may 2x it": an everyday word, unless capitalised or with a day suffix/year
        return not (head in _AMBIGUOUS_MONTHS and not s[:1].isupper() and len(s.split()) < 3
                    and not s.rstrip().endswith(("st", "nd", "rd", "th")))
