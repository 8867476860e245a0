"""Names and organisations the small NER model misses, and clean-up of the spans it does return.

Found here (each an independent pattern; the detector resolves overlaps):
- PERSON after a title (`Mr`, `Mrs`, `Dr`, `Prof`, `Herr`, `Frau`, `Mme`, `Sr.`, ...); the title
  is not part of the span;
- PERSON after a naming cue: `my name is`, `name:`, `I'm`, `call me`, `last name?`,
  `Directed by:`, `Dear`, `speak to`, `my son/daughter/kid/wife/husband ...`;
- PERSON as a known first name (a list of ~45,000 given names from 50+ countries, from the
  `gender-guesser` package when installed) followed by an optional initial and capitalised
  surnames (`Ravil G Yefimov`), also in all-lower-case text (`eva kleist`); and as
  `First I. Last` shapes (capitalised word, single initial, capitalised word) without the list;
- PERSON as a dialogue speaker (`Nicole:` at the start of a line, with two or more such lines);
- ORGANIZATION with a legal-form suffix (`Ltd`, `Inc`, `GmbH`, `AB`, `S.A.`, `Oy`, ...) or a
  firm-name shape after a company cue (`works at`, `from`, `joined`, `the address of`).

`clean_ner_span` trims NER spans: a possessive `'s`, leading titles/roles (`Producer`,
`Mr.`), anything after a line break, trailing `Apt`/`Suite`, and drops spans with digits.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import regex

from tierwise.privacy.finding import Finding

_TITLES = (
    r"mr|mrs|ms|miss|mx|dr|prof|professor|sir|dame|lady|lord|rev|reverend|fr|father|sister|brother|"
    r"herr|frau|fräulein|fru|fröken|hr|mme|mlle|monsieur|madame|mademoiselle|m|sr|sra|srta|señor|señora|"
    r"dott|dottssa|sig|sig\.ra|signor|signora|dhr|mevr|mw|pan|pani|gospodin|gospođa|ing|mag|judge|"
    r"senator|president|captain|capt|officer|detective|nurse|doctor|uncle|aunt|auntie|grandma|grandpa|"
    r"director|producer|manager|coach|ceo|cfo|cto|agent"
)
_CAP = r"\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}[\p{Ll}'’]+)?"
_PARTICLE = r"(?:van|von|der|den|de|da|di|du|del|della|le|la|ten|ter|af|al|bin|ibn|mac|o')"
_NAME = rf"{_CAP}(?:\s+\p{{Lu}}\.?(?=\s))?(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{0,2}}"
_NAME_LC = r"\p{Ll}[\p{Ll}'’-]+"

_TITLE_RX = regex.compile(rf"(?<![\w])(?i:{_TITLES})\.?\s+(?P<n>{_NAME})")
_CUE_RX = regex.compile(
    rf"(?i:\b(?:my\s+name\s+is|name\s+is|name\s*:|names?\s+are|i\s*'?\s*a?m|call\s+me|last\s+name\??|"
    rf"first\s+name\??|surname\??|directed\s+by\s*:?|written\s+by|signed\s*,?|dear|hi|hello|hey|"
    rf"speak\s+to|talk\s+to|ask\s+for|my\s+(?:son|daughter|kid|child|wife|husband|partner|mother|father|"
    rf"mom|dad|brother|sister|friend|boss|colleague|patient|client)|patient\s*:|client\s*:|contact\s*:|"
    rf"attn\.?\s*:?|c/o|"
    # the same cues in German, Swedish, Danish/Norwegian, Dutch, French, Spanish, Italian, Portuguese
    rf"ich\s+heiße|ich\s+heisse|mein\s+name\s+ist|jag\s+heter|mitt\s+namn\s+är|jeg\s+hedder|jeg\s+heter|"
    rf"ik\s+heet|mijn\s+naam\s+is|je\s+m'appelle|je\s+m’appelle|mon\s+nom\s+est|me\s+llamo|mi\s+nombre\s+es|"
    rf"mi\s+chiamo|il\s+mio\s+nome\s+è|meu\s+nome\s+é|chamo-me|eu\s+sou|ich\s+bin|jag\s+är|je\s+suis|"
    rf"soy|sono|liebe[rs]?|hallo|hej|bonjour|hola|ciao|beste|cher|chère|estimad[oa])(?!\w))[\s:,]*(?P<n>{_NAME})"
)
_INITIAL_RX = regex.compile(rf"(?<![\w])(?P<n>{_CAP}\s+\p{{Lu}}\.?\s+{_CAP})(?![\w])")
_TOKEN_RX = regex.compile(rf"(?<![\w])(?P<n>{_CAP}(?:\s+\p{{Lu}}\.?)?(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{0,2}})(?![\w])")
_LC_TOKEN_RX = regex.compile(rf"(?<![\w])(?P<n>{_NAME_LC}(?:\s+\p{{Ll}}\.?)?(?:\s+{_NAME_LC})?)(?![\w])")
_SPEAKER_RX = regex.compile(rf"(?m)^[ \t>]*(?P<n>{_CAP}(?:\s+{_CAP})?):[ \t]")

_LEGAL = (
    r"Ltd|Limited|Inc|Incorporated|LLC|L\.L\.C\.|LLP|PLC|plc|GmbH|AG|KG|AB|ASA|A/S|ApS|Oy|Oyj|SA|S\.A\.|SAS|"
    r"SARL|S\.p\.A\.|SpA|S\.r\.l\.|Srl|BV|B\.V\.|NV|N\.V\.|Pty|Corp|Corporation|Company|Co|Group|Holdings|"
    r"Technologies|Systems|Solutions|Partners|Associates|Industries|Enterprises|Labs|Bank|Insurance|"
    r"Consulting|Capital|Ventures|Foundation|Institute|University|College|Hospital|Clinic"
)
_ORG_SUFFIX_RX = regex.compile(
    rf"(?<![\w])(?P<n>(?:{_CAP}|\p{{Lu}}{{2,}})(?:[ -](?:&\s+)?(?:{_CAP}|\p{{Lu}}{{2,}}|and|&)){{0,4}}"
    rf",?\s+(?:{_LEGAL})\b\.?(?:\s+(?:&\s+)?Co\b\.?)?)"
)
_FIRM_RX = regex.compile(
    rf"(?i:\b(?:works?\s+(?:at|for)|working\s+(?:at|for)|employed\s+(?:at|by)|joined|is\s+from|am\s+from|"
    rf"the\s+address\s+of|offices?\s+of|ceo\s+of|founder\s+of|customer\s+of|spent\s+a\s+year\s+at|"
    rf"arbeitet\s+bei|arbeite\s+bei|werk\s+bij|arbetar\s+på|arbetar\s+för|arbejder\s+hos|jobber\s+i|werkt\s+bij|"
    rf"travaille\s+chez|trabaja\s+en|trabajo\s+en|lavora\s+presso|lavoro\s+presso|trabalha\s+na|trabalha\s+no)\s+)"
    rf"(?P<n>{_CAP}(?:(?:,\s+|\s+and\s+|\s*-\s*|\s+&\s+|\s+)(?-i:{_CAP})){{0,3}})"
)

# Capitalised words that are not names even when a name list has them.
_NOT_NAMES = frozenset(
    """a an the and or but if of in on at to for by with from as is are was were be been it its this that these
    those i you he she we they me him her us them my your his our their what which who whom when where why how
    all any both each few more most other some such no not only own same so than too very can will just should
    now here there then once also may might must shall would could yes ok okay hello hi hey dear thanks thank
    please sorry mr mrs ms dr sir madam monday tuesday wednesday thursday friday saturday sunday january
    february march april june july august september october november december god love faith hope joy grace
    will mark rose art bill page bob guy jack sky summer autumn winter spring dawn eve star king queen prince
    angel baby honey major young white black brown green gray grey long short little small big street road
    avenue lane drive court place suite apt unit phone mobile fax email website address name date time city
    country state north south east west new old great good best happy merry christmas easter holiday""".split()
)


@functools.cache
def first_names() -> frozenset[str]:
    """Case-folded given names from gender-guesser's data file, if the package is installed."""
    try:
        import gender_guesser
    except ImportError:
        return frozenset()
    path = os.path.join(os.path.dirname(gender_guesser.__file__), "data", "nam_dict.txt")
    out: set[str] = set()
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line or line[0] in "#=":
                    continue
                parts = line.split()
                if len(parts) < 2:
                    continue
                name = parts[1].replace("+", " ").casefold()
                if len(name) >= 3 and name not in _NOT_NAMES:
                    out.add(name)
    except OSError:
        return frozenset()
    return frozenset(out)


def _is_first(word: str, names: frozenset[str]) -> bool:
    return word.casefold() in names


class NameHeuristics:
    name = "heuristics.names"

    def __init__(self, entities: frozenset[str]) -> None:
        self.entities = entities
        self.names = first_names() if "PERSON" in entities else frozenset()

    def find(self, text: str) -> Iterator[Finding]:
        if "PERSON" in self.entities:
            yield from self._persons(text)
        if "ORGANIZATION" in self.entities:
            yield from self._orgs(text)

    def _persons(self, text: str) -> Iterator[Finding]:
        has_upper = any(c.isupper() for c in text)
        for rx, score in ((_TITLE_RX, 0.8), (_CUE_RX, 0.75), (_INITIAL_RX, 0.72)):
            for m in rx.finditer(text):
                a, b = m.span("n")
                words = m.group("n").split()
                if words[0].casefold() in _NOT_NAMES:
                    continue
                yield Finding("PERSON", a, b, score, self.name)
        speakers = [m for m in _SPEAKER_RX.finditer(text) if m.group("n").casefold() not in _NOT_NAMES
                    and m.group("n").split()[0].casefold() not in _LABELS]
        if len(speakers) >= 2:
            for m in speakers:
                a, b = m.span("n")
                yield Finding("PERSON", a, b, 0.7, self.name)
        if not self.names:
            return
        for m in _TOKEN_RX.finditer(text):
            words = m.group("n").split()
            if _is_first(words[0], self.names):
                if len(words) == 1 and _sentence_start(text, m.start()) and not _followed_by_verb(text, m.end()):
                    # "Will", "Victoria" at a sentence start: a name only when a verb or comma follows
                    continue
                if len(words) == 1 and words[0].casefold() in _COUNTRY_NAMES and _PLACE_BEFORE.search(text, max(0, m.start() - 16), m.start()):
                    continue  # "the capital of France", "in India": a country, not a person
                yield Finding("PERSON", m.start(), m.end(), 0.65 if len(words) > 1 else 0.6, self.name)
            elif len(words) > 1 and _is_first(words[1], self.names) and words[0].casefold() not in _NOT_NAMES:
                # "Producer Liviana Palerma": a role word before a first name
                start = m.start() + m.group("n").index(words[1])
                yield Finding("PERSON", start, m.end(), 0.6, self.name)
        if not has_upper:  # all-lower-case text: "eva kleist lives at ..."
            for m in _LC_TOKEN_RX.finditer(text, overlapped=True):
                words = m.group("n").split()
                if _is_first(words[0], self.names) and len(words[0]) >= 4:
                    end = m.end()
                    if len(words) > 1 and (words[-1] in _NOT_NAMES or words[-1] in _LC_STOP):
                        end = m.start() + len(words[0])
                    yield Finding("PERSON", m.start(), end, 0.55, self.name)

    def _orgs(self, text: str) -> Iterator[Finding]:
        for m in _ORG_SUFFIX_RX.finditer(text):
            a, b = m.span("n")
            first = m.group("n").split()[0].casefold()
            if first in _NOT_NAMES:
                # "The Acme Corp": start after the article
                sp = m.group("n").find(" ")
                if sp < 0:
                    continue
                a = a + sp + 1
            yield Finding("ORGANIZATION", a, b, 0.75, self.name)
        for m in _FIRM_RX.finditer(text):
            a, b = m.span("n")
            yield Finding("ORGANIZATION", a, b, 0.72, self.name)


_LABELS = frozenset(
    """note notes date time phone mobile fax email e-mail website address name subject re from to cc bcc tel
    question answer q a user bot assistant system summary title when where who what why how step warning error
    info tip example output input result status id ref""".split()
)
_LC_STOP = frozenset(spacy_stop for spacy_stop in
                     "lives live is was has had will would in at on to from and or with for of the a an".split())


# Country names that are also given names in the list (every region's English name in phonenumbers' locale data,
# matched against it: that data takes 1.7 s to import, so the 13 are written out). A lone one after a word that
# introduces a place is the country ("the capital of France" was a PERSON, and under `pii: local_only` never left).
_COUNTRY_NAMES = frozenset("argentina chad dominica france georgia india iran israel jordan kenya mali montserrat "
                           "syria".split())
_PLACE_BEFORE = regex.compile(r"(?i:\b(?:of|in|across|throughout|within))\s+$")


def _sentence_start(text: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and text[j] in " \t\"'“(":
        j -= 1
    return j < 0 or text[j] in ".!?\n:"


_VERBISH = regex.compile(r"\s*(?:,|:|\b(?:is|was|has|had|and|said|says|spent|lives|will|went|can|did|does|"
                         r"shouted|wrote|asked|told|called|works|worked)\b)")


def _followed_by_verb(text: str, i: int) -> bool:
    return _VERBISH.match(text, i) is not None


_CODE_CHARS = frozenset("()[]{}=<>;|\\/_@#$%^*")
_PARTICLES = frozenset("van von der den de da di du del della le la ten ter af al bin ibn mac".split())
# Greetings, form labels and similar that the English model takes for names in other languages.
_NER_NOISE = frozenset(
    w.strip() for w in
    """guten tag|guten morgen|hallo|goedendag|goedemorgen|hej|hej hej|god morgon|bonjour|bonsoir|hola|buenos días|
    ciao|buongiorno|olá|bom dia|tel|tel.|telefon|telefoon|téléphone|teléfono|telefono|handy|mobil|iban|bic|swift|
    adresse|adress|address|indirizzo|dirección|endereço|adres|name|namn|nom|nombre|nome|naam|mein name|
    mon nom|mi nombre|email|e-mail|mail|fax|ssn|dni|bsn|nie|pnr|steuer-id|meine steuer-id|user|bot|assistant|
    system|db|api|url|id|ok|okay|thanks|danke|merci|gracias|grazie|tack|dank je|
    summarise|summarize|translate|classify|categorise|categorize|extract|paraphrase|rewrite|explain|describe|
    compose|draft|proofread|outline|tl;dr""".split("|")
)  # the last line: a prompt's opening instruction verb, which the small NER model reads as a PERSON
_ROLE_PREFIX = regex.compile(rf"^(?:(?i:{_TITLES})\.?\s+|ex-\S+\s+)+")
_DIGIT = regex.compile(r"\d")
_IDENT = regex.compile(r"\p{Ll}\p{Lu}\p{Ll}*\p{Lu}|\p{Ll}\p{Lu}.*\d")  # camelCase with 2+ humps, or with digits


def clean_ner_span(text: str, start: int, end: int, entity: str) -> tuple[int, int] | None:
    """Trim an NER span to the name itself, or None to drop it."""
    span = text[start:end]
    nl = span.find("\n")
    if nl == 0:
        return None
    if nl > 0:
        end = start + nl
        span = span[:nl]
    stripped = span.rstrip(" \t.,;:")
    end = start + len(stripped)
    span = stripped
    if " ".join(span.split()).casefold() in _NER_NOISE or any(c in _CODE_CHARS for c in span):
        return None
    if entity in ("PERSON", "LOCATION") and (_DIGIT.search(span) or _IDENT.search(span)):
        return None  # "UserAccountSettingsV2", "range(1": identifiers, not people or places
    if entity == "PERSON":
        # leading lower-case words are not part of a name ("ben Jan de Vries"), particles aside
        words = span.split(" ")
        k = 0
        while k < len(words) - 1 and words[k][:1].islower() and words[k].casefold() not in _PARTICLES:
            k += 1
        if k:
            cut = len(" ".join(words[:k])) + 1
            start += cut
            span = span[cut:]
        if span.islower() and any(c.isupper() for c in text[max(0, start - 200):end + 200]):
            return None  # a lower-case "name" in text that capitalises names
        if span.isupper() and len(span) <= 4:
            return None  # "NI", "DB": acronyms
        for tail in ("'s", "’s", "'", "’"):
            if span.endswith(tail):
                span = span[: -len(tail)]
                end -= len(tail)
                break
        m = _ROLE_PREFIX.match(span)
        if m and m.end() < len(span):
            start += m.end()
            span = span[m.end():]
        for tail in (" Apt", " Suite", " Unit"):
            if span.endswith(tail):
                span = span[: -len(tail)]
                end -= len(tail)
        if _DIGIT.search(span):
            return None
    if not span.strip() or end <= start:
        return None
    return start, end
