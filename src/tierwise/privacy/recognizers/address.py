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

from collections.abc import Iterator

import regex

from tierwise.privacy.finding import Finding

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

_ANCHORS = regex.compile(
    rf"""(?ix)
      (?<![\w.,-]){_LEAD}{_NUM}\s+(?:{_WORD}\s+){{0,4}}(?:{_TYPES})\b\.?
          (?:\s+{_PART}?\s*(?-i:{_CAP})){{0,3}}(?:\s+\d{{1,5}}[A-Za-z]?\b\.?)?
    | (?<![\w]){_LEAD}(?:{_PREFIX_TYPES})\b\.?\s+(?:{_PART}\s+)?(?:{_WORD}\s+){{0,3}}{_NUM}\.?(?![\w])
    | (?<![\w]){_LEAD}(?:{_WORD}\s+){{0,2}}{_WORD}(?:{_SUFFIXES})\.?\s+{_NUM}\.?(?![\w])
    | (?<![\w.,-]){_NUM}\s+{_WORD}(?:{_SUFFIXES})\b
    | (?<![\w]){_LEAD}(?:{_WORD}\s+){{0,3}}u\.\s+{_NUM}\.?(?![\w])
    | (?<![\w]){_LEAD}(?:p\.?\s?o\.?\s?box|post\s?box|postbox|postfach|boîte\ postale|apartado|casilla)\s+\d{{1,6}}(?![\w])
    | (?<![\w])(?:psc|unit|cmr)\s+\d{{3,5}},?\s+box\s+\d{{2,5}}(?:\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}})?
    | (?<![\w])(?:usns|usnv|uss|usns|usnc|usc?gc)\s+{_WORD}(?:\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}})?
    | (?<![\w])(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}}
    | (?<![\w])the\ corner\ of\ [^\n,.;:!?]{{3,60}}?\ and\ (?:{_WORD})(?:\s+{_WORD}){{0,2}}(?=\s*(?:[\n,.;:!?]|$))
    | (?P<g>(?<![\w.,-]){_LEAD}\d{{1,5}}\s+(?:{_WORD}\s+){{1,3}}\d{{1,4}}[A-Za-z]?\.?(?![\w]))
    """
)
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
      | [A-Z]\d[A-Z][ \t]?\d[A-Z]\d                      # Canadian postcode
      | [A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}             # UK postcode
      | (?:\d{4,6}[ \t]+)?\p{Lu}[\p{L}'’.∆-]*(?:[ -]\p{Lu}[\p{L}'’.∆-]*|[ ](?:de|del|da|do|di|la|le|am|an|im|sur|en)[ ]\p{Lu}[\p{L}'’.-]*){0,3}
        (?:[ \t]*\([\p{L} ]+\))?(?:[ \t]+\d{4,6})?
    )
    (?![\w])
    """
)
_SEG_AFTER_COMMA = regex.compile(r"[ \t]*,[ \t]*(?P<s>\d{1,3}(?:[ \t\n]+\d{4,6})?)(?![\w])")
_STOP_WORDS = frozenset({
    "the", "and", "or", "but", "phone", "tel", "mobile", "fax", "email", "e-mail", "website", "please", "thanks",
    "thank", "i", "we", "you", "he", "she", "it", "they", "my", "our", "your", "is", "are", "was", "name",
    "address", "desk", "office", "user", "can", "could", "would", "will", "do", "does", "did", "what", "where",
    "personal", "date", "when", "in", "on", "at", "for", "from", "to", "it's", "i'm", "i'll", "bot", "mr", "mrs",
    "ms", "dr", "hello", "hi", "dear", "regards", "best", "this", "that", "these", "there", "here",
})


class AddressRecognizer:
    name = "context.address"
    entities = frozenset({"STREET_ADDRESS"})

    def find(self, text: str) -> Iterator[Finding]:
        if not any(c.isdigit() for c in text) and "corner of" not in text:
            return
        for m in _ANCHORS.finditer(text):
            start, end = m.span()
            if m.group("g") is not None:
                # number + words + number: an address only with a cue before or a unit/lines after.
                ext = self._extend(text, end)
                if ext == end and not _ADDRESS_CUE.search(text, max(0, start - 24), start):
                    continue
                yield Finding("STREET_ADDRESS", start, ext, 0.8, self.name)
                continue
            end = self._extend(text, end)
            yield Finding("STREET_ADDRESS", start, end, 0.92, self.name)

    def _extend(self, text: str, end: int) -> int:
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
            end = s.end()
            c = _SEG_AFTER_COMMA.match(text, end)
            if c:
                end = c.end()
            u = _UNIT_RX.match(text, end)
            if u:
                end = u.end()
        return end
