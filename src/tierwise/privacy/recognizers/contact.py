"""E-mail addresses, phone numbers (the `phonenumbers` library), IP addresses, URLs with credentials.

Phones: a cheap pattern finds runs of at least six digits with the separators people write
(spaces, dots, dashes, slashes, parentheses, a leading `+` or `00`); only those runs are handed
to `phonenumbers.PhoneNumberMatcher`, first with +country (any region), then in each configured
region in order (VALID leniency: the number must exist in that region's numbering plan). A run
that no region accepts still counts when a phone cue stands right before it (`Phone:`, `Tel`,
`Fax`, `mobile`, `call`, `ring`, `text me at`, ... in several languages) and it looks like a
phone (7-15 digits, a possible number in some region).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

import phonenumbers
import regex
from phonenumbers import Leniency, PhoneNumberMatcher

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.ids import context_before


class EmailRecognizer:
    name = "pattern.email"
    entities = frozenset({"EMAIL_ADDRESS"})
    # Local part: RFC 5322 atext with dots; domain: labels of letters/digits/hyphens (IDN letters
    # too), a TLD of letters. Case-insensitive by construction.
    _rx = regex.compile(
        r"(?<![\w.%+-])[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
        r"\s?@\s?(?:[\w](?:[\w-]{0,61}[\w])?\.)+[^\W\d_]{2,24}(?![\w-])"
    )

    def find(self, text: str) -> Iterator[Finding]:
        if "@" not in text:
            return
        for m in self._rx.finditer(text):
            yield Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.98, self.name)


class IpRecognizer:
    name = "pattern.ip"
    entities = frozenset({"IP_ADDRESS"})
    _v4 = regex.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
    # v6: hex groups and colons (with at least two colons), optionally ending in a dotted v4.
    _v6 = regex.compile(
        r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
    )
    _version_ctx = regex.compile(r"(?i)\b(?:version|ver\.?|v|release|build)\s*$")

    def find(self, text: str) -> Iterator[Finding]:
        if "." in text:
            for m in self._v4.finditer(text):
                try:
                    ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                if self._version_ctx.search(text, max(0, m.start() - 12), m.start()):
                    continue
                yield Finding("IP_ADDRESS", m.start(), m.end(), 0.95, self.name)
        if ":" in text:
            for m in self._v6.finditer(text):
                s = m.group()
                if s.count(":") < 2 or len(s) < 3:
                    continue
                try:
                    ip = ipaddress.IPv6Address(s)
                except ValueError:
                    continue
                if ip.is_unspecified and s == "::":
                    continue
                yield Finding("IP_ADDRESS", m.start(), m.end(), 0.95, self.name)


class UrlCredentialsRecognizer:
    name = "pattern.url_credentials"
    entities = frozenset({"URL_CREDENTIALS"})
    # scheme://user:password@host — the finding spans `user:password`.
    _rx = regex.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,20}://([^\s:/@?#]+:[^\s@/?#]+)@[^\s/@]+")

    def find(self, text: str) -> Iterator[Finding]:
        if "://" not in text:
            return
        for m in self._rx.finditer(text):
            yield Finding("URL_CREDENTIALS", m.start(1), m.end(1), 1.0, self.name)


_PHONE_CUE = regex.compile(
    r"(?i)(?:\b(?:phone|ph|tel|telephone|mobile|mob|cell|cellphone|fax|desk|office|home|work|contact|"
    r"call|calls|ring|text|sms|whatsapp|dial|reach|messages? to|answering at|number|nr|no|"
    r"telefon|telefonnummer|handy|mobil|mobiltelefon|téléphone|portable|teléfono|móvil|celular|"
    r"telefono|cellulare|telefoon|gsm|puhelin|tlf|telf)\b\.?|\+)[\s:#.()-]*(?:is|at|on|to|:)?\s*$"
)


class PhoneRecognizer:
    name = "phonenumbers"
    entities = frozenset({"PHONE_NUMBER"})
    # A run of digits with phone separators; at least 6 digits (checked below).
    _cand = regex.compile(
        r"(?<![\w+])(?:\+|00)?(?:\(\d{1,5}\)|\d)(?:[ .\-/\u00a0]{0,2}(?:\(\d{1,5}\)|\d)){5,19}"
        r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?(?![\w])"
    )

    def __init__(self, regions: Sequence[str]) -> None:
        self.regions = tuple(regions) or ("US",)

    def find(self, text: str) -> Iterator[Finding]:
        for m in self._cand.finditer(text):
            s = m.group()
            ndigits = sum(c.isdigit() for c in s)
            if ndigits < 6:
                continue
            hit = self._match(s)
            if hit is not None:
                a, b, score = hit
                yield Finding("PHONE_NUMBER", m.start() + a, m.start() + b, score, self.name)
            elif 7 <= ndigits <= 15 and context_before(text, m.start(), _PHONE_CUE, 24) and self._possible(s):
                yield Finding("PHONE_NUMBER", m.start(), m.end(), 0.6, self.name)

    def _match(self, s: str) -> tuple[int, int, float] | None:
        regions = self.regions if not s.startswith(("+", "00")) else self.regions[:1]
        for region in regions:
            for pm in PhoneNumberMatcher(s, region, leniency=Leniency.VALID, max_tries=4):
                if pm.end - pm.start >= len(s) - 12:  # the match covers most of the run
                    return pm.start, pm.end, 0.9
        return None

    def _possible(self, s: str) -> bool:
        for region in self.regions:
            try:
                num = phonenumbers.parse(s, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(num):
                return True
        # Short local numbers (7 digits) are possible in few plans; accept the shape.
        digits = sum(c.isdigit() for c in s)
        return 7 <= digits <= 15
