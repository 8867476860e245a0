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

import functools
import ipaddress
import re
from collections.abc import Iterator, Sequence

import ahocorasick_rs
import phonenumbers
import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan, finditer_near_digits, prescan_of

_SPACE_BEFORE = regex.compile(r"\s", regex.REVERSE)
_SPACE = regex.compile(r"\s")


class EmailRecognizer:
    name = "pattern.email"
    entities = frozenset({"EMAIL_ADDRESS"})
    # Local part: RFC 5322 atext with dots; domain: labels of letters/digits/hyphens (IDN letters
    # too), a TLD of letters. Case-insensitive by construction.
    _rx = re.compile(
        r"(?<![\w.%+-])[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
        r"\s?@\s?(?:[\w](?:[\w-]{0,61}[\w])?\.)+[^\W\d_]{2,24}(?![\w-])"
    )
    # RFC 5322's quoted local part (spaces and specials inside quotes): `"jane doe"@example.com`.
    _quoted = re.compile(r'"[^"\r\n]{1,64}"[ \t]?@\s?(?:[\w](?:[\w-]{0,61}[\w])?\.)+[^\W\d_]{2,24}(?![\w-])')

    # An address spelled out to get past scrapers, which a model reads back at once:
    # `jane [at] example [dot] com`, `jane(at)example.com`, `jane dot doe at example dot com`.
    # A bracketed `at` is unambiguous; a bare ` at ` counts only with a spelled ` dot ` in the
    # domain and a common TLD after it (`look at this.com` is prose, not an address).
    _AT_B = r"\s*[\[({<]\s*at\s*[\])}>]\s*"
    _DOT_B = r"\s*[\[({<]\s*dot\s*[\])}>]\s*"
    _ATOM = r"[\w!#$%&'*+/=?^`|~-]+"
    _LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
    # Round 9: one pattern from the local part to the TLD was tried at every atom of a `1 dot 1 dot ...` run and
    # followed the run to its end each time (16 KB: 1.9 s, ~5x per doubling). Now each `at` is found first; the
    # local part is matched backwards from it and the domain forwards, each within `_SPELLED_REACH` characters.
    _SPELLED_REACH = 256
    _spelled_at = regex.compile(r"[\[({<]\s{0,3}at\s{0,3}[\])}>]|(?<=\s)at(?=\s)", regex.IGNORECASE)
    _spelled_local = regex.compile(rf"(?<![\w.%+-]){_ATOM}(?:(?:\.|{_DOT_B}|\s+dot\s+){_ATOM})*",
                                   regex.IGNORECASE | regex.REVERSE)
    _spelled_domain_b = regex.compile(rf"(?:{_LABEL}(?:\.|{_DOT_B}|\s+dot\s+))+[^\W\d_]{{2,24}}(?![\w-])",
                                      regex.IGNORECASE)
    _spelled_domain = regex.compile(
        rf"(?!(?:the|a|an|this|that|my|your|his|her|its|our|their)\s)(?:{_LABEL}(?:\.|{_DOT_B}|\s+dot\s+))*{_LABEL}"
        rf"(?:{_DOT_B}|\s+dot\s+)"
        # generic TLDs and country codes, not those that are everyday words (`in`, `me`, `no`, `be`, `at`)
        r"(?:com|org|net|edu|gov|mil|int|info|biz|io|co|eu|uk|us|it|de|fr|se|dk|fi|nl|ch|es|pt|pl|cz|ie|ca|au|nz|"
        r"jp|cn|br|ru|hu|ro|gr|ua|sk|si|hr|bg|lt|lv|ee|lu|mx|ar|cl|za|kr|tw|hk|sg|il|ae|tr|vn|th|ph|pk|ng|ke|eg)"
        r"(?![\w-])",
        regex.IGNORECASE)
    _SPELLED_CUES = (" dot ", "at]", "at)", "at}", "at>", "at ]", "at )")
    # Round 9: a bare ` at ` and a domain with its dots as written (`jane.doe at example.com`). `work at google.com`
    # is prose, so the word before must read as an address's local part: two atoms joined by `.` `_` `+` `-`
    # (`jane.doe`, `j_doe`), or letters then digits (`jdoe99`), or any word after `email`/`mail` in the 80 characters
    # before; and the domain must end in a TLD of the list above.
    _AT_LOCAL = regex.compile(r"(?<![\w.%+-])(?:[A-Za-z][A-Za-z0-9]*(?:[._+-][A-Za-z0-9]+)+|[A-Za-z]{2,}[0-9]{1,6})",
                              regex.REVERSE)  # matched backwards from the ` at `
    # One plain word before the ` at ` is a local part after a word for an address (`email`, `e-mail`, `mail`)
    _MAIL_CUE = re.compile(r"\be-?mail|\bmailto\b|\bmail\b")
    _AT_WORD = regex.compile(r"(?<![\w.%+-])[A-Za-z][A-Za-z0-9]{1,63}", regex.REVERSE)
    _FILE_EXT = frozenset("html htm php asp aspx py js ts json md txt pdf csv xml yaml yml toml cfg ini sh exe zip gz "
                          "tar png jpg jpeg gif svg css rs go java c h cpp rb pl log conf".split())  # `index.html at docs.x.org`
    _AT_DOMAIN = re.compile(
        r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,8}"
        r"(?:com|org|net|edu|gov|mil|int|info|biz|io|co|eu|uk|us|it|de|fr|se|dk|fi|nl|ch|es|pt|pl|cz|ie|ca|au|nz|"
        r"jp|cn|br|ru|hu|ro|gr|ua|sk|si|hr|bg|lt|lv|ee|lu|mx|ar|cl|za|kr|tw|hk|sg|il|ae|tr|vn|th|ph|pk|ng|ke|eg)"
        r"(?![\w-]|\.[a-z0-9])")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        low = prescan_of(text, pre).lower  # shared with the other recognizers: substring tests only
        if any(c in low for c in self._SPELLED_CUES):
            yield from self._find_spelled(text)
        for i, at, j in self._bare_ats(low):
            d = self._AT_DOMAIN.match(low, j)
            if d is not None:
                lp = self._AT_LOCAL.match(text, max(0, i - 64), i)
                if lp is not None and self._prose_word(lp.group(), text[at:at + 2] == "AT"):
                    lp = None  # `co-founder at stripe.com`, `ASP.NET at microsoft.com`: only after a mail word
                if lp is None and self._MAIL_CUE.search(low, max(0, i - 80), i):  # `your email is UtaKortig at ...`
                    lp = self._AT_LOCAL.match(text, max(0, i - 64), i) or self._AT_WORD.match(text, max(0, i - 64), i)
                if lp is not None and lp.group().rpartition(".")[2].lower() not in self._FILE_EXT:
                    yield Finding("EMAIL_ADDRESS", lp.start(), d.end(), 0.85, self.name)
        # Only around each `@`: from the whitespace before its local part (`name @host` allowed)
        # to the whitespace after its domain; an address holds no other whitespace.
        i = text.find("@")
        n = len(text)
        while i >= 0:
            ws = _SPACE_BEFORE.search(text, 0, max(0, i - 1))
            lo = ws.end() if ws else 0
            ws = _SPACE.search(text, min(n, i + 2))
            hi = ws.start() if ws else n
            q = self._quoted_start(text, i)
            if q is not None:
                m = self._quoted.match(text, q)
                if m is not None:
                    yield Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.98, self.name)
                    i = text.find("@", max(hi, m.end()))
                    continue
            for m in self._rx.finditer(text, lo, hi):
                yield Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.98, self.name)
            i = text.find("@", hi)

    def _find_spelled(self, text: str) -> Iterator[Finding]:
        """`jane [at] example [dot] com`, `jane dot doe at example dot com`: around each `at`, within reach."""
        n, reach, done = len(text), self._SPELLED_REACH, 0
        for hit in self._spelled_at.finditer(text):
            left, right = hit.start(), hit.end()
            bracket = text[left] not in "aA"
            # the spaces around the `at` belong to it (a bare one has at least one on each side: its lookarounds)
            while left > max(done, hit.start() - 8) and text[left - 1].isspace():
                left -= 1
            while right < min(n, hit.end() + 8) and text[right].isspace():
                right += 1
            if left <= done:
                continue
            local = self._spelled_local.match(text, max(done, left - reach), left)
            if local is None:
                continue
            dom = (self._spelled_domain_b if bracket else self._spelled_domain).match(text, right, min(n, right + reach))
            if dom is None:
                continue
            yield Finding("EMAIL_ADDRESS", local.start(), dom.end(), 0.9, self.name)
            done = dom.end()

    # review29d: `jane.doe  at  example.com`, a tab or a line break around the `at`, went unread; the common single
    # spaces are found with `str.find`, the rest with a pattern only when the text holds such a spacing
    _WIDE_AT_CUES = ("\tat", "at\t", "\nat", "at\n", "\rat", "at\r", "  at", "at  ")
    _WIDE_AT = re.compile(r"\s{1,8}(at)\s{1,8}")

    @classmethod
    def _bare_ats(cls, low: str) -> Iterator[tuple[int, int, int]]:
        """(end of the local part, the `at`, start of the domain) of each `at` between whitespace."""
        if any(c in low for c in cls._WIDE_AT_CUES):
            for m in cls._WIDE_AT.finditer(low):
                yield m.start(), m.start(1), m.end()
            return
        i = low.find(" at ")
        while i >= 0:
            yield i, i + 1, i + 4
            i = low.find(" at ", i + 3)

    @staticmethod
    def _prose_word(local: str, shouted: bool) -> bool:
        """review29d: words joined by `-` alone (`co-founder`, `sign-up`, `e-commerce`) or a name in capitals
        (`ASP.NET`, `COVID19`) before ` at <domain>` are prose far more often than an address (`JANE.DOE AT
        EXAMPLE.COM`, the `AT` in capitals too, is one)."""
        hyphen_words = not any(c in local for c in "._+") and not any(c.isdigit() for c in local)
        return hyphen_words or (not shouted and not any(c.islower() for c in local))

    @staticmethod
    def _quoted_start(text: str, at: int) -> int | None:
        """Where the quoted local part before the `@` at `at` opens (`"jane doe"@example.com`), if any."""
        end = at - 1
        if end > 0 and text[end] in " \t":
            end -= 1
        if end <= 0 or text[end] != '"':
            return None
        q = text.rfind('"', max(0, end - 65), end)
        return q if q >= 0 and "\n" not in text[q:end] else None


class IpRecognizer:
    name = "pattern.ip"
    entities = frozenset({"IP_ADDRESS"})
    _v4 = regex.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![\w]|\.[0-9])")
    # v6: hex groups and colons (with at least two colons), optionally ending in a dotted v4.
    _v6 = re.compile(
        r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
    )
    _v6_gate = re.compile(r"::|:[0-9A-Fa-f]{1,4}:")
    _version_ctx = re.compile(r"(?i)\b(?:version|ver\.?|v|release|build)\s*$")
    # Round 11: glued to a word for a host (`host203.0.113.45`, `ip_10.1.2.3`, `from-203.0.113.45.log`); glued to
    # any other word it may be a version (`v1.2.3.4`, `python3.10.1.2`)
    _glued_v4 = regex.compile(r"[0-9](?<=[A-Za-z_-][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![\w]|\.[0-9])")
    _glued_v4_word = re.compile(r"(?i)(?:ip|ipv4|host|addr|address|server|srv|gw|gateway|client|peer|remote|from|src|"
                                r"dst)[_-]?\Z")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        if "." in text:
            for m in self._glued_v4.finditer(text):
                if self._glued_v4_word.search(text, max(0, m.start() - 8), m.start()) is None:
                    continue
                try:
                    ip4 = ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                if not (ip4.is_loopback or ip4.is_unspecified):
                    yield Finding("IP_ADDRESS", m.start(), m.end(), 0.95, self.name)
            for m in self._v4.finditer(text):
                try:
                    ip4 = ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                if ip4.is_loopback or ip4.is_unspecified:
                    continue  # 127.0.0.1, 0.0.0.0: the same on every machine, identify no one
                if self._version_ctx.search(text, max(0, m.start() - 12), m.start()):
                    continue
                yield Finding("IP_ADDRESS", m.start(), m.end(), 0.95, self.name)
        if ":" in text and self._v6_gate.search(text):
            for m in self._v6.finditer(text):
                s = m.group()
                groups = [g for g in s.split(":") if g]
                # "a::b", "std::" in code: too short to be an address anyone would write
                if s.count(":") < 2 or not (len(groups) >= 3 or any(len(g) >= 3 for g in groups)):
                    continue
                try:
                    ip = ipaddress.IPv6Address(s)
                except ValueError:
                    continue
                if ip.is_unspecified or ip.is_loopback:
                    continue
                yield Finding("IP_ADDRESS", m.start(), m.end(), 0.95, self.name)


class UrlCredentialsRecognizer:
    name = "pattern.url_credentials"
    entities = frozenset({"URL_CREDENTIALS"})
    # scheme://user:password@host — the finding spans `user:password`.
    _rx = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,20}://([^\s:/@?#]+:[^\s@/?#]+)@[^\s/@]+")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        i = text.find("://")
        last = 0
        while i >= 0:
            # scheme (<= 21 chars) before "://", then user:password@host after it. privacy16: a match starts at most
            # 22 characters before this "://" (a later start was dropped anyway) and needs an `@` after it; a search
            # of the whole 622-character window at every "://" (`://a` repeated) took ~5 us a character
            end = min(len(text), i + 600)
            if text.find("@", i, end) >= 0:
                for s in range(max(last, i - 22), i + 1):
                    m = self._rx.match(text, s, end)
                    if m:
                        yield Finding("URL_CREDENTIALS", m.start(1), m.end(1), 1.0, self.name)
                        last = m.end()
                        break
            i = text.find("://", i + 3)


_CUES = (
    r"phone|ph|tel|tele|telephone|mobile|mob|cell|cellphone|fax|desk|office|home|work|contact|call|calls|calling|"
    r"ring|text|sms|whatsapp|signal|dial|reach|reached|messages?|answering|registered|number|hotline|"
    r"telefon|telefonnummer|handy|mobil|mobiltelefon|téléphone|portable|teléfono|telefono|móvil|celular|"
    r"cellulare|telefoon|gsm|puhelin|tlf|telf|numéro|numero|nummer"
)
# A cue word, then at most three short words ("call me on", "reach us at", "Phone:\n").
_PHONE_CUE = re.compile(rf"(?i)\b(?:{_CUES})\b[^\w]{{0,4}}(?:\w{{1,8}}[^\w]{{1,3}}){{0,3}}$")
# A cue right after the number: "416 60 039 office", "(37) 788-063-Office", "+46 8 123 fax".
_PHONE_CUE_AFTER = re.compile(
    r"(?i)[\s,;:()-]{0,3}(?:\(?(?:office|home|work|mobile|mob|cell|fax|desk|tel|phone|direct|landline|"
    r"private|privat|arbete|hem|bureau|domicile)\b)"
)
# Numbers that are something else: "license number is", "order no.", "invoice #".
_NOT_PHONE_WORDS = (
    r"licen[cs]e|passport|account|acct|order|invoice|ticket|policy|card|cc|iban|ssn|social security|"
    r"tax|vat|serial|tracking|reference|ref|booking|case|customer|member|id|isbn|zip|postcode|postal|"
    r"routing|sort code|bsn|pnr"
)
_NOT_PHONE = re.compile(rf"(?i)\b(?:{_NOT_PHONE_WORDS})\b")
_STRONG_WORDS = (
    r"phone|tel|telephone|mobile|cell|fax|call|ring|text|sms|whatsapp|dial|reach|messages?|answering|"
    r"telefon|handy|mobil|téléphone|portable|teléfono|telefono|móvil|celular|telefoon|gsm|puhelin"
)
_STRONG_CUE = re.compile(rf"(?i)\b(?:{_STRONG_WORDS})\b")


# Every word of the three cue patterns above (as substrings: a cheap test that one may match).
_CUE_WORDS = ahocorasick_rs.AhoCorasick(sorted({
    w.replace("messages?", "message").replace("licen[cs]e", "licen")
    for alt in (_CUES, _NOT_PHONE_WORDS, _STRONG_WORDS)
    for w in alt.split("|")
}))


def _last(rx: re.Pattern[str], s: str) -> int:
    pos = -1
    for m in rx.finditer(s):
        pos = m.start()
    return pos
# A date (and maybe a time) is not a phone: "1978-04-13 12:20", "12/03/1985".
_DATE_START = re.compile(
    r"(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:19|20)\d\d(?!\d)"
)


_LONG_GROUP = re.compile(r"\d{6,}[^\d]+\d")  # a 6+ digit group followed by more groups
# Session 30 (the whole scan of text without personal data: GSM8K 153 phone numbers per MB, QQP and the standard
# library's year ranges): a range of years (`2016-2017`, `1858-1947`) and arithmetic (`2000-1800 = 200`,
# `18000/900`, `2400-1100-700`: groups joined by `-` or `/` with no leading zero, an `=` or an operator beside them)
# are no phone numbers without a cue.
_YEARS = re.compile(r"(1[89]\d\d|20\d\d)-(1[89]\d\d|20\d\d)")
_SUM = re.compile(r"[1-9]\d{0,5}(?:[-/][1-9]\d{0,5}){1,3}")
# review30f: an operator alone is no sum: a list's bullet (`- 415-555-2671`, `* ...`), a name ending in x (`Alex
# 415-...`), a key (`home=415-...`), brackets (`Jane (415-555-2671)`) or two numbers (`415-555-2671 / 415-555-2672`)
# stand beside phones. A sum has a short number on the operator's other side, or `= <digit>` after it.
_OPERAND = r"\$?\d[\d,.]{0,12}(?![-/]?\d)"
_SUM_BEFORE = re.compile(r"(?<![-/.,\d])\$?\d[\d,.]{0,12}\s*(?:[=*x×+/-]|–)\s*\(?\s*$|<<\s*$")
_SUM_AFTER = re.compile(rf"\s*(?:=\s*[0-9$<]|\)?\s*(?:[*×+/-]|–)\s*{_OPERAND})")


_LIST_MARK = re.compile(r"\d{1,2}\. (?=0)")  # `1. ` before a number with its area code's 0
# Round 11: a number glued to a word (`call_+14155552671.wav`, `rec415-555-2671.wav`, `cell4155552671`): digit-first
# patterns (the engine skips to a `+` or a digit), the word before checked after a match
# review32d: in international form glued to a word after it only (`tel:+46701234567x`, ` +14155552671ext`): missed
_GLUED_PHONE = regex.compile(r"(?:\+(?<=[A-Za-z_]\+)[1-9][0-9]{7,14}|\+(?<![0-9A-Za-z_]\+)[1-9][0-9]{7,14}(?=[A-Za-z_])|[0-9](?<=[A-Za-z_][0-9]|[A-Za-z]-[0-9])[0-9.-]{5,13}[0-9])(?![0-9])")
_DASHED = re.compile(r"\d{3}-\d{3}-\d{4}")
# Round 13: an area code in brackets glued to a word (`banana(415)555-2671` kept only `555-2671`, `(415)555-0100x`,
# `jane+1(415)5550100doe` nothing): the word before or after checked after a match
_GLUED_AREA = re.compile(r"(?:\+?[1-9]\d{0,2} ?)?\(0?\d{1,5}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,2}(?![0-9])")
_GLUED_CUE = re.compile(r"(?i)(?:phone|tel|cell|mobile|mob|fax|call|sms|whatsapp|voicemail)[_-]?\Z")


class PhoneRecognizer:
    name = "phonenumbers"
    entities = frozenset({"PHONE_NUMBER"})
    # A run of digits with phone separators; at least 6 digits (checked below).
    _cand = re.compile(
        r"(?=[+(\d])(?<![\w+])(?<![\w]-)(?:\+|00)?(?:\(\d{1,5}\)|\d)(?:[ .\-/\u00a0]{0,2}(?:\(\d{1,5}\)|\d)){5,19}"
        r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?(?![\w])"
    )

    def __init__(self, regions: Sequence[str]) -> None:
        self.regions = tuple(regions) or ("US",)

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        for m in finditer_near_digits(self._cand, text, pre):
            s, start, end = m.group(), m.start(), m.end()
            mark = _LIST_MARK.match(s)
            if mark is not None:  # `1. 089/1234567`: a numbered list's mark before the number (round 11)
                s, start = s[mark.end():], start + mark.end()
            yield from self._candidate(text, pre, s, start, end)
        yield from self._glued(text, pre)

    def _candidate(self, text: str, pre: Prescan, s: str, start: int, end: int) -> Iterator[Finding]:
        best = 0.95 if s.startswith(("+", "00")) else 0.9  # the highest score this could get
        if pre.claimed and pre.claimed_above(start, end, best):
            return  # a card, IBAN, SSN or IP is there: a phone finding would lose to it
        ndigits = sum(c.isdigit() for c in s)
        if ndigits < 6 or ndigits > 21 or _DATE_START.match(s):
            return
        before = text[max(0, start - 40):start]
        after_cue = _PHONE_CUE_AFTER.match(text, end) is not None
        # The cue patterns below run only when one of their words occurs before the number.
        words_before = _CUE_WORDS.find_matches_as_indexes(before.lower())
        if not after_cue and words_before and \
                _last(_NOT_PHONE, before[-28:]) > _last(_STRONG_CUE, before[-28:]):
            return  # "license number is ...", "card # ...": the nearest cue says it is something else
        cue = after_cue or (bool(words_before) and _PHONE_CUE.search(before) is not None)
        if not cue and (
            ndigits < 7
            or (not s.startswith(("+", "0", "(")) and s.isdigit() and not 10 <= ndigits <= 15)
            or (not s.startswith(("+", "00")) and _LONG_GROUP.search(s))
        ):
            return  # "130000", "200000-130000": amounts, not phones, without a cue
        if not cue and not s.startswith(("+", "0", "(")) and _not_a_phone(text, start, end, s):
            return
        if not cue and s.isdigit() and (s in _IN_ORDER or s in _IN_ORDER[::-1]):
            return  # `0123456789`: the digits in order, a placeholder
        if not cue and start and text[start - 1] in _CURRENCY and _AMOUNT.fullmatch(_EXT.sub("", s)):
            return  # `$350 000 x 5`: an amount (`$415-555-2671` is a phone written to pass for one)
        hit = self._match(s)
        if hit is not None:
            a, b, valid_score = hit
            score = 0.95 if s.startswith(("+", "00")) else (0.9 if cue else valid_score)
            yield Finding("PHONE_NUMBER", start + a, start + b, score, self.name)
        elif cue and 7 <= ndigits <= 15 and self._possible(s):
            yield Finding("PHONE_NUMBER", start, end, 0.8, self.name)

    def _glued(self, text: str, pre: Prescan) -> Iterator[Finding]:
        """Round 11: a number glued to a word, which `_cand` refuses (a letter before it): in international form or
        dashed 3-3-4 after any word, in any form after a phone word (`cell4155552671`)."""
        for m in finditer_near_digits(_GLUED_PHONE, text, pre):
            s = m.group()
            if s[0] != "+" and not _DASHED.fullmatch(s) and not _GLUED_CUE.search(text, max(0, m.start() - 10),
                                                                                    m.start()):
                continue
            if _valid_in(s, self.regions):
                yield Finding("PHONE_NUMBER", m.start(), m.end(), 0.9, self.name)
        for m in finditer_near_digits(_GLUED_AREA, text, pre):
            a, b = m.span()
            glued = (a and (text[a - 1].isalpha() or text[a - 1] == "_")) or (b < len(text) and (
                text[b].isalpha() or text[b] == "_"))
            if glued and 7 <= sum(c.isdigit() for c in m.group()) <= 15 and _valid_in(m.group(), self.regions):
                yield Finding("PHONE_NUMBER", a, b, 0.9, self.name)

    def _match(self, s: str) -> tuple[int, int, float] | None:
        hit = _valid_in(s, self.regions)
        return (0, len(s), 0.7) if hit else None

    def _possible(self, s: str) -> bool:
        return _possible_in(s, self.regions)


# Round 11 (the whole scan of GSM8K, QQP and the standard library): a decimal (`1.00000003`), a ratio or fraction
# (`2000/1000`: a phone written with a slash has an area code with its 0, `089/1234567`) and a range of round
# amounts (`29100-54500`, `3000-4000`: the first below the second, both ending in 00) are no phone numbers without a
# cue; nor are the digits in order (`0123456789`) or an amount after a currency sign (`$350 000 x 5`).
_DECIMAL = re.compile(r"[1-9]\d{0,2}\.\d{5,}")
_RATIO = re.compile(r"[1-9]\d{0,5}/[1-9]\d{0,5}")
_RANGE = re.compile(r"([1-9]\d{1,5}00) ?[-\u2013] ?([1-9]\d{1,5}00)")
_IN_ORDER = "01234567890123456789"
_CURRENCY = frozenset("$\u20ac\u00a3\u00a5\u20b9")  # $ € £ ¥ ₹
# review31d: after a currency sign only an amount's shape is an amount (`350 000`, `1,250,000.50`, `4155552`); a
# phone written there (`$415-555-2671`, `$0341 8387176`, `$3660170548`) is not one
_AMOUNT = re.compile(r"[1-9]\d{0,2}(?:([ ,.\u00a0])\d{3}(?:\1\d{3})*)?(?:[.,]\d{1,2})?|[1-9]\d{0,8}(?:[.,]\d{1,2})?")
_EXT = re.compile(r"\s?(?:x|ext\.?|extension)\s?\d{1,6}\Z")


def _not_a_phone(text: str, start: int, end: int, s: str) -> bool:
    """A range of years or of round amounts, a decimal, a ratio, or digit groups in a sum (`2000-1800 = 200`,
    `= 18000/900`)."""
    y = _YEARS.fullmatch(s)
    if y is not None and y.group(1) <= y.group(2):
        return True
    r = _RANGE.fullmatch(s)
    if (r is not None and int(r.group(1)) < int(r.group(2))) or _DECIMAL.fullmatch(s) or (
            _RATIO.fullmatch(s) and len(s) <= 10):  # 9 digits at most: `41555/52671` is a phone (review31d)
        return True
    return _SUM.fullmatch(s) is not None and (_SUM_BEFORE.search(text, max(0, start - 24), start) is not None
                                              or _SUM_AFTER.match(text, end) is not None)


@functools.lru_cache(maxsize=4096)
def _valid_in(s: str, regions: tuple[str, ...]) -> bool:
    """Whether `s` is a valid number: with +country (or 00) in any region, else in one of `regions`."""
    intl = s.startswith(("+", "00"))
    for region in regions[:1] if intl else regions:
        try:
            num = phonenumbers.parse(s, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _possible_in(s: str, regions: tuple[str, ...]) -> bool:
    digits = sum(c.isdigit() for c in s)
    if 7 <= digits <= 15:
        return True  # short local numbers are possible in few plans; the cue vouches for the shape
    for region in regions:
        try:
            num = phonenumbers.parse(s, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(num):
            return True
    return False
