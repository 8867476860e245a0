"""Values recognised by their context: dates of birth (a date after a birth cue) and street addresses.

Dates of birth: a date (numeric d/m/y, y-m-d, or with a month name in English, German, French,
Spanish, Italian, Dutch, Swedish, Portuguese) within a short distance after a cue: `born`,
`DOB`, `date of birth`, `birthday`, `geboren`, `Geburtsdatum`, `né(e) le`, `date de
naissance`, `nacido`, `fecha de nacimiento`, `nato il`, `data di nascita`, `geboortedatum`,
`född`, `födelsedatum`, `nascido`, `data de nascimento`, ... A date with no cue is not a date
of birth (dates alone are not personal data).

Street addresses: see `address.py`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator

import ahocorasick_rs

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan, prescan_of

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|"
    "januar|februar|märz|maerz|mai|juni|juli|oktober|dezember|"
    "janvier|février|fevrier|mars|avril|juin|juillet|août|aout|septembre|octobre|novembre|décembre|decembre|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|"
    "gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|"
    "januari|februari|maart|mei|augustus|oktober|"
    "januari|februari|mars|maj|juni|juli|augusti|oktober|"
    "janeiro|fevereiro|março|marco|maio|junho|julho|setembro|outubro|novembro|dezembro"
)
_DATE = (
    r"(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})"  # 12/03/1985, 3.12.85
    r"|\d{4}[./-]\d{1,2}[./-]\d{1,2}"  # 1985-03-12
    rf"|\d{{1,2}}(?:st|nd|rd|th|er|\.|º)?\s+(?:of\s+|de\s+)?(?:{_MONTHS})\.?,?\s+(?:de\s+)?\d{{4}}"  # 12 March 1985
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"  # March 12, 1985
    r")"
)
_CUE = (
    r"(?:born|b\.|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthdate|birthday|birth\s+day|"
    r"geboren(?:\s+am)?|geburtsdatum|geb\.|née?\s+le|née?|date\s+de\s+naissance|"
    r"nacid[oa](?:\s+el)?|fecha\s+de\s+nacimiento|nat[oa](?:\s+il)?|data\s+di\s+nascita|"
    r"geboortedatum|geboren\s+op|född(?:\s+den)?|födelsedatum|født|fødselsdato|syntynyt|"
    r"nascid[oa](?:\s+em)?|data\s+de\s+nascimento|urodzon[ya]|data\s+urodzenia)"
)
_DOB = re.compile(
    rf"(?i)\b{_CUE}(?:\s+(?:is|was|on|in|am|le|el|il|em|den|op|:))?[\s:,-]{{0,6}}(?:on\s+)?(?P<d>{_DATE})(?!\d)"
)


# Cheap pre-check: the stems every cue contains, found in one Aho-Corasick pass over the
# lower-cased text; the full pattern runs only in a window around each.
_CUE_STEMS = ("born", "dob", "d.o.b", "birth", "geb", "né", "nacid", "nacim", "nato", "nata", "nascit", "nascid",
              "geboor", "född", "födel", "født", "fødsel", "syntyn", "urodz", "b.")
_STEMS = ahocorasick_rs.AhoCorasick(list(_CUE_STEMS))


class DateOfBirthRecognizer:
    name = "context.date_of_birth"
    entities = frozenset({"DATE_OF_BIRTH"})

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        lowered = pre.lower
        if not pre.lower_exact:  # lower() changed the length (rare letters): scan the whole text
            for m in _DOB.finditer(text):
                yield Finding("DATE_OF_BIRTH", m.start("d"), m.end("d"), 0.85, self.name)
            return
        hits = sorted(s for _i, s, _e in _STEMS.find_matches_as_indexes(lowered, overlapping=True))
        runs = pre.digit_runs
        starts = [a for a, _b in runs]
        last_end = 0
        for i in hits:
            k = bisect_left(starts, i)
            if k == len(starts) or starts[k] >= i + 90:
                continue  # every date has digits: none in reach after this cue
            lo = max(last_end, i - 24)
            for m in _DOB.finditer(text, lo, min(len(text), i + 90)):
                if m.end("d") <= last_end:
                    continue
                last_end = m.end("d")
                yield Finding("DATE_OF_BIRTH", m.start("d"), m.end("d"), 0.85, self.name)


# Driving licence numbers: no checksum and a different shape in every US state and country
# (`F162823540116`, `2270-66-1551`, `6940579`, `D1234567`), so only a value right after a cue.
_DL_CUE = (
    r"driver'?s?[’']?s?\s+licen[cs]e|driving\s+licen[cs]e|licen[cs]e\s+to\s+drive|\bDL\b|\bD\.L\.|"
    r"führerschein|fuhrerschein|permis\s+de\s+conduire|carnet\s+de\s+conducir|licencia\s+de\s+conducir|"
    r"permiso\s+de\s+conducir|patente\s+di\s+guida|rijbewijs|körkort(?:snummer)?|korkort|kørekort|førerkort|"
    r"ajokortti|prawo\s+jazdy|carteira\s+de\s+motorista|carta\s+de\s+condução"
)
_DL = re.compile(
    rf"(?i)(?:{_DL_CUE})(?:[\s#:.-]|no\b|nr\b|num(?:ber|éro|ero|mer)?\b|n°|id\b|is\b|was\b|number\s+is\b){{0,12}}?"
    r"(?P<v>(?=[A-Z0-9-]*[0-9])[A-Z0-9](?:[A-Z0-9]|[ -](?=[0-9])){4,19})(?![\w-])"
)
_DL_STEM_WORDS = ("licen", "dl", "d.l.", "führer", "fuhrer", "permis", "conduc", "guida", "rijbewijs", "körkort",
                   "korkort", "kørekort", "førerkort", "ajokortti", "prawo", "motorista", "condução")
_DL_STEMS = ahocorasick_rs.AhoCorasick(list(_DL_STEM_WORDS))
_DL_SHORT = frozenset({"dl", "d.l."})  # count only as whole words ("DL 123", not "handle")


def _word_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isalnum()


class DriverLicenseRecognizer:
    name = "context.driver_license"
    entities = frozenset({"DRIVER_LICENSE"})

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        if not pre.digit_runs:
            return  # every licence number here holds a digit
        low = pre.lower
        hits = [s for _i, s, e in _DL_STEMS.find_matches_as_indexes(low, overlapping=True)
                if not (_DL_STEM_WORDS[_i] in _DL_SHORT and (_word_at(low, s - 1) or _word_at(low, e)))]
        last_end = 0
        for i in sorted(hits):
            for m in _DL.finditer(text, max(last_end, i - 24), min(len(text), i + 80)):
                if m.end("v") <= last_end:
                    continue
                last_end = m.end("v")
                yield Finding("DRIVER_LICENSE", m.start("v"), m.end("v"), 0.9, self.name)


CONTEXT_RECOGNIZERS = (DateOfBirthRecognizer, DriverLicenseRecognizer)
