"""A PDF's dates are not card or phone numbers (privacy17; review36f's left).

PDF writes its dates as `D:YYYYMMDDHHmmSS` and a zone (`Z`, `+01'00'`): `/CreationDate (D:20261207140009Z)` in every
document's information dictionary, in annotations and signatures. The 14 digits passed the card checksum one time in
ten and the phone parser in about half the zone forms (`D:...+01'00'`, or none): such a PDF, read by
privacy/pdf_text.py and pdf_hidden.py, was withheld or replaced by its redacted text. A finding of another entity
that lies inside such a date, with a month, day, hour, minute and second that exist and a year 1900-2099, is dropped.
That leaves out nothing real: no card network issues a 14-digit number beginning 19 or 20 (Diners' are 30, 36, 38),
and no country's phone numbers run to 14 digits after a `D:`.

review37e: a date's digits also ran into the value after it (`D:20261207140009 212-736-5000`, `...-4111111111111111`,
`...+46701234567`): the recognizers read one longer number (a card in the date's digits, the value after it never
tried), so dropping that finding left the value unread. Where a text has such dates, the recognizers also read it with
each date's digits blanked to letters (in a window around each date), and what they find there is added.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

import regex

from tierwise.privacy.finding import Finding

_DATE = regex.compile(r"(?<![A-Za-z0-9])D:(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
                      r"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
                      r"(?:Z(?:00'?00'?)?|[+-](?:[01][0-9]|2[0-3])(?:'[0-5][0-9]'?|'?))?(?![0-9])")
_KEPT = frozenset({"DATE_TIME", "DATE_OF_BIRTH"})  # a date is a date
# privacy18: a dash or underscore glued after a date reads as a space (`D:20261207140009-46701234567`: `x-4670...` is no
# phone or SSN for their recognizers, `x 4670...` is; a card reads either way)
_GLUE = ("-", "_")
_AROUND = 120  # characters read again on each side of a date: longer than any value a run of digits can hold


def without_pdf_dates(text: str, found: list[Finding],
                      rescan: Callable[[str], list[Finding]] | None = None) -> list[Finding]:
    """`found` without the findings (other than dates) that lie inside a PDF date of `text`, plus what `rescan` (the
    recognizers) finds in `text` with the dates' digits blanked (the same length: its spans are `text`'s)."""
    if "D:" not in text:
        return found
    spans = [(m.start() + 2, m.end()) for m in _DATE.finditer(text)]
    if not spans:
        return found
    # review37e: each finding against the one date that starts last at or before it (dates do not overlap), not
    # against every date (quadratic: 100,000 characters of `D:20261207140009 ` took 1.5 s, 25,000 0.2 s)
    starts = [a for a, _ in spans]

    def inside(f: Finding) -> bool:
        i = bisect_right(starts, f.start) - 1
        return i >= 0 and f.end <= spans[i][1]

    kept = [f for f in found if f.entity in _KEPT or not inside(f)]
    if rescan is None:
        return kept
    # Only a value beside a date runs into its digits: each date is read again with `_AROUND` characters either
    # side (a 20k-character text with two dates: +8% instead of +75% for the whole text read twice)
    parts, at = [], 0
    for a, b in spans:  # letters, not spaces: `x -4111...` is no card for the number rules, `x-4111...` is a glued one
        parts += [text[at:a], "x" * (b - a)]
        at = b
        if text[b:b + 1] in _GLUE:  # privacy18: `D:...-46701234567`, `x-46701234567` is no phone: `x 46701234567` is
            parts.append(" ")
            at = b + 1
    parts.append(text[at:])
    blanked = "".join(parts)  # every date blanked (a window may hold the next one)
    windows: list[list[int]] = []
    for a, b in spans:  # overlapping windows as one (dates close together: each character read again at most once)
        lo, hi = max(0, a - _AROUND), min(len(text), b + _AROUND)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    for lo, hi in windows:
        window = blanked[lo:hi]
        for f in rescan(window):
            # a value the window's edge cut (read whole in the text) is not taken in pieces
            if f.entity not in _KEPT and (f.start > 0 or lo == 0) and (f.end < len(window) or hi == len(text)):
                kept.append(Finding(f.entity, f.start + lo, f.end + lo, f.score, f.detector))
    return kept
