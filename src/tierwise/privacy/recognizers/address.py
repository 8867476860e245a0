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
_WORD = r"[^\W\d_][\w'’.-]*"
_NUM = r"\d{1,5}(?:[ -]?[A-Za-z](?![\w]))?(?:[/-]\d{1,4})?"
_UNIT = r"(?:,?\s*(?:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|bldg|building|#|no|nr|n°|piso|etage|lgh|app)\.?\s*#?\s*\d{1,5}[A-Za-z]?)"

_ANCHORS = regex.compile(
    rf"""(?ix)
    (?P<a>
      (?<![\w.,-]){_NUM}\s+(?:{_WORD}\s+){{0,4}}(?:{_TYPES})\b\.?(?:\s+\d{{1,5}}[A-Za-z]?\b)?
    | (?<![\w])(?:{_TYPES})\b\.?\s+(?:(?:de|del|de\ la|des|du|di|della|dos|das|do|da|van|von|der|la|le|l')\s+)?
        (?:{_WORD}\s+){{0,3}}{_NUM}(?![\w])
    | (?<![\w])(?:{_WORD}\s+){{0,2}}{_WORD}(?:{_SUFFIXES})\s+{_NUM}(?![\w])
    | (?<![\w])(?:{_NUM}\s+)?{_WORD}(?:{_SUFFIXES})\b(?:\s+{_NUM})?(?![\w])
    | (?<![\w])(?:p\.?\s?o\.?\s?box|post\s?box|postbox|postfach|box|boîte\ postale|bp|apartado|casilla)\s+\d{{1,6}}(?![\w])
    | (?<![\w])(?:psc|unit|cmr)\s+\d{{3,5}},?\s+box\s+\d{{2,5}}(?:\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}})?
    | (?<![\w])(?:usns|usnv|uss|usns)\s+{_WORD}(?:\s+(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}})?
    | (?<![\w])(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{{5}}
    )
    """
)
_UNIT_RX = regex.compile(_UNIT, regex.I)
# What may follow an anchor as further address segments (after ", " or a line break).
_SEG = regex.compile(
    r"""(?x)
    (?:\s*,\s*|\s*\n\s*(?:>\s*)?|\s+)
    (?P<s>
        [A-Z]{2,3}(?:\s+\d{4,6})?                       # region code, with a postcode
      | \d{4,6}(?:[ -]\d{3,4})?                          # postcode
      | [A-Z]\d[A-Z]\s?\d[A-Z]\d                         # Canadian postcode
      | [A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}                # UK postcode
      | (?:\d{4,6}\s+)?\p{Lu}[\p{L}'’.-]+(?:[ -]\p{Lu}[\p{L}'’.-]+){0,3}(?:\s*\([\p{L} ]+\))?(?:\s+\d{4,6})?
    )
    (?=\s*(?:,|\n|$|\.\s|\s))
    """
)
_STOP_WORDS = frozenset({
    "the", "and", "or", "but", "phone", "tel", "mobile", "fax", "email", "e-mail", "website", "please", "thanks",
    "thank", "i", "we", "you", "he", "she", "it", "they", "my", "our", "your", "is", "are", "was", "name",
    "address", "desk", "office", "user", "can", "could", "would", "will", "do", "does", "did", "what", "where",
})


class AddressRecognizer:
    name = "context.address"
    entities = frozenset({"STREET_ADDRESS"})

    def find(self, text: str) -> Iterator[Finding]:
        for m in _ANCHORS.finditer(text):
            start, end = m.span()
            end = self._extend(text, end)
            yield Finding("STREET_ADDRESS", start, end, 0.75, self.name)

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
            u = _UNIT_RX.match(text, end)
            if u:
                end = u.end()
        return end
