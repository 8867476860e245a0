"""Payment cards, IBANs and national identifiers: a pattern finds candidates, a checksum decides.

Identifiers whose check digit is weak (a 9-digit number passes the Dutch 11-test one time in
eleven) or whose bare form is any digit run (a US SSN without dashes) need a context word
nearby (`BSN`, `SSN`, `personnummer`, ...); the formatted forms do not.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.checksums import (
    IBAN_LENGTHS,
    card_ok,
    de_tax_id_ok,
    es_dni_ok,
    fr_insee_ok,
    iban_ok,
    issued_card,
    it_fiscal_code_ok,
    luhn_ok,
    nl_bsn_ok,
    plausible_date,
    se_personnummer_ok,
    uk_nino_ok,
    us_ssn_ok,
)
from tierwise.privacy.recognizers.prescan import Prescan, class_table, finditer_near_digits, prescan_of

_CONTEXT_WINDOW = 60


def context_before(text: str, start: int, words: re.Pattern[str], window: int = _CONTEXT_WINDOW) -> bool:
    return words.search(text, max(0, start - window), start) is not None


def _compact(s: str) -> str:
    return "".join(c for c in s if c.isalnum())


class CardRecognizer:
    name = "checksum.card"
    entities = frozenset({"CREDIT_CARD"})
    # 13-19 digits, optionally grouped by single spaces or dashes.
    _rx = re.compile(r"\d(?<![\w.,-]\d)(?:[ -]?\d){11,18}(?![\w]|[.,]\d|-\d)")
    # Maestro issues 12-digit cards (IIN 50, 56-69, 0604); a 12-digit run is a card only with
    # such a prefix or a card word before it.
    # Grouped as printed (4-4-4-4[-3], or Amex's 4-6-5) with dots, slashes or underscores: only
    # whole groups, so a long decimal (3.14159265358979) is not read as a card.
    _grouped = re.compile(r"(?<![\w.,/-])\d{4}([./_])(?:\d{4}\1\d{4}\1\d{1,7}|\d{6}\1\d{5})(?![\w]|[.,/]\d)")
    _maestro = re.compile(r"^(?:50|5[6-9]|6\d|0604)")
    # Session 30: one run of digits glued to a word in a file name or an id (`scan4111111111111111.pdf`,
    # `receipt-4111...`, `card.4111...`, `4111...scan.pdf`); the number rules above refuse a letter, `-` or `.` beside
    # it. Only a card network's first digit (2-6: not a millisecond timestamp's 1), and not in a hex word (a hash).
    # privacy18: any script's letters (`é4111111111111111é`, `ж4111...ж`, `ア4111...ア`: the number rules refuse
    # them as word characters, and this rule took ASCII letters only)
    _glued = re.compile(r"(?:(?<=[^\W\d_])|(?<=[^\W\d_][-.]))\d{13,19}(?![0-9])"
                        r"|(?<![^\W_])(?<![0-9][-.,])\d{13,19}(?=[-.]?[^\W\d_])")
    # privacy17: a card printed in its groups (4-4-4-4, Amex's 4-6-5) with a letter or a digit or two glued to its
    # outside (`ID4111 1111 1111 1111`, or a restored value the remote model wrote between characters,
    # `9<CREDIT_CARD_1>5` -> `94111 1111 1111 11115`, sent back after the client trimmed the turn it came from): the
    # number rules refuse a letter or a digit beside it, and the groups' pieces are no whole groups of the run
    # review37e: the printed group separators of `_grouped` too (`ID4111.1111.1111.1111`, `A3782/822463/10005`) and
    # up to three spaces (`ID4111  1111  1111  1111`): one separator the same throughout
    _glued_groups = re.compile(r"\d{4}( {1,3}|[./_-])\d{4}\1\d{4}\1\d{4}|\d{4}( {1,3}|[./_-])\d{6}\2\d{5}")
    # privacy18: a card stored as a number and printed with thousands separators (a spreadsheet's or a database's
    # export: `4,111,111,111,111,111`, `4.111.111.111.111.111`, `4'111'111'111'111'111`, with cents or not); only
    # a card network's first digit (2-6), as the glued rule: amounts of 10^13 and more are rare, and a tenth of them
    # pass Luhn
    _thousands = re.compile(r"(?<![\w.,'])[2-6]\d{0,2}([,.'])\d{3}(?:\1\d{3}){3,5}(?![\w']|\1\d)")
    _hex_word = re.compile(r"[0-9A-Fa-f]*[A-Fa-f][0-9A-Fa-f]*")
    _ctx = re.compile(r"(?i)\b(?:card|cc|credit|debit|maestro|visa|mastercard|amex|kort|karte|carte|tarjeta|carta)\b")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        seen: dict[str, bool] = {}  # card_ok of the pieces tried (a repeating run tries the same ones again)
        for m in finditer_near_digits(self._rx, text, prescan_of(text, pre)):
            raw = m.group()
            digits = raw.replace(" ", "").replace("-", "")
            if len(digits) == 12:
                if luhn_ok(digits) and (self._maestro.match(digits) or context_before(text, m.start(), self._ctx, 40)):
                    yield Finding("CREDIT_CARD", m.start(), m.end(), 0.9, self.name)
                continue
            if card_ok(digits):
                yield Finding("CREDIT_CARD", m.start(), m.end(), 1.0, self.name)
                continue
            # Two numbers run together, or a card followed by more digits: try the groups.
            split = list(self._split(raw, m.start(), seen))
            yield from split
            yield from self._beyond(text, m.start(), raw, split[0].end - m.start() if split else 1, seen)
        for m in finditer_near_digits(self._grouped, text, prescan_of(text, pre)):
            if card_ok(m.group().replace(m.group(1), "")):
                yield Finding("CREDIT_CARD", m.start(), m.end(), 1.0, self.name)
        for m in finditer_near_digits(self._glued_groups, text, prescan_of(text, pre)):
            a, b = m.span()
            if ((a and text[a - 1].isalnum()) or (b < len(text) and text[b].isalnum())) and card_ok(
                    m.group().replace(m.group(1) or m.group(2), "")):
                yield Finding("CREDIT_CARD", a, b, 0.9, self.name)
        for m in self._thousands.finditer(text):  # (the whole text: prescan's digit clusters take no `,` or `'`)
            # review38d: and a network's prefix and length (Luhn alone read 1 in 18 amounts of 13-19 digits as a card)
            if card_ok(d := m.group().replace(m.group(1), "")) and issued_card(d):
                yield Finding("CREDIT_CARD", m.start(), m.end(), 0.8, self.name)
        for m in finditer_near_digits(self._glued, text, prescan_of(text, pre)):
            if "2" <= text[m.start()] <= "6" and card_ok(m.group()) and not self._in_hex_word(text, m.start(), m.end()):
                yield Finding("CREDIT_CARD", m.start(), m.end(), 0.9, self.name)

    _HASH_LEN = 24  # review37e: the shortest hex word taken for a hash (digests are 32-128, a UUID's groups 4-12)

    def _in_hex_word(self, text: str, start: int, end: int) -> bool:
        """The word around a glued run (64 characters each side at most: a glued-run text stays linear) is hex and as
        long as a digest: `CC4111111111111111`, `4111111111111111D`, `A4111111111111111B` are cards."""
        a, b = start, end
        lo, hi = max(0, start - 64), min(len(text), end + 64)
        while a > lo and text[a - 1].isascii() and text[a - 1].isalnum():
            a -= 1
        while b < hi and text[b].isascii() and text[b].isalnum():
            b += 1
        # a digest's length: a hash. privacy18: hex letters on both sides of the digits no longer make a shorter word a
        # hash (review37e's rule): `A4111111111111111B`, `ab4111111111111111cd` are cards glued to letters. Random hex
        # words of 16-23 characters read as a card 51-108 times in 200,000 (36-45 before): a placeholder too many,
        # against a card that leaves the machine
        return b - a >= self._HASH_LEN and self._hex_word.fullmatch(text, a, b) is not None

    def _split(self, raw: str, base: int, seen: dict[str, bool]) -> Iterator[Finding]:
        seps = [i for i, c in enumerate(raw) if c in " -"]
        if not seps:
            return
        bounds = [0, *(i + 1 for i in seps)]
        ends = [*seps, len(raw)]
        # privacy16: only the pieces of 13-19 digits are joined and checked (`1 1 1 1 ...` joined all ~400 pairs of a
        # run's bounds). privacy17: the groups' digit counts added up (`cum[k]`: digits before group k) give, by
        # bisection, the ends each start can have, instead of walking all ends for every start (the card
        # recognizer's share of the slowest input, digits between spaces)
        cum = [0]
        for a, b in zip(bounds, ends, strict=True):
            cum.append(cum[-1] + b - a)
        every = raw.replace(" ", "").replace("-", "")
        for k, a in enumerate(bounds):
            lo = bisect_left(cum, cum[k] + 13, k + 1)
            hi = bisect_right(cum, cum[k] + 19, lo)
            for j in range(lo, hi):
                b = ends[j - 1]
                if _card_ok(every[cum[k]:cum[j]], seen):
                    yield Finding("CREDIT_CARD", base + a, base + b, 0.9, self.name)
                    return

    _more = re.compile(r"(?:[ -]?\d){1,18}")

    def _beyond(self, text: str, base: int, raw: str, after: int, seen: dict[str, bool]) -> Iterator[Finding]:
        """privacy17: a card after another number one space before it (`order 123456 4111 1111 1111 1111`, a
        space-separated table's `10042 4111 ...`, a 14-digit id that passes Luhn) was never found: the pattern took
        the first 19 digits, the split found no piece or only the first number, and the next try started mid-group.
        Pieces that start at a group of `raw` at `after` or later and end in the run's groups after it are tried
        here (each (start, end) pair of a run at most once)."""
        more = self._more.match(text, base + len(raw))
        if more is None:
            return
        run = raw + more.group()
        every = run.replace(" ", "").replace("-", "")
        if every.count(every[0]) == len(every):  # one digit repeated: no piece is a card (`card_ok`)
            return
        seps = [i for i, c in enumerate(run) if c in " -"]
        bounds = [0, *(i + 1 for i in seps)]
        ends = [*seps, len(run)]
        cum = [0]
        for a, b in zip(bounds, ends, strict=True):
            cum.append(cum[-1] + b - a)
        first_new = bisect_right(ends, len(raw))  # groups ending past `raw`: ends[first_new:]
        for k in range(bisect_left(bounds, max(after, 1)), len(bounds)):
            if bounds[k] >= len(raw):
                return
            lo = max(bisect_left(cum, cum[k] + 13, k + 1), first_new + 1)
            hi = bisect_right(cum, cum[k] + 19, lo)
            for j in range(lo, hi):
                if _card_ok(every[cum[k]:cum[j]], seen):
                    yield Finding("CREDIT_CARD", base + bounds[k], base + ends[j - 1], 0.9, self.name)
                    return


def _card_ok(digits: str, seen: dict[str, bool]) -> bool:
    """`card_ok`, remembered for one text (at most 4,096 pieces, then forgotten: memory stays bounded). privacy17:
    the pieces of a repeating run (`12 12 12 ...`, `+46 +46 ...`, the slowest inputs) are the same few strings."""
    got = seen.get(digits)
    if got is None:
        if len(seen) >= 4096:
            seen.clear()
        got = seen[digits] = card_ok(digits)
    return got


class IbanRecognizer:
    name = "checksum.iban"
    entities = frozenset({"IBAN_CODE"})
    # Digit-first so the `regex` module can skip to digits (an IBAN need not hold a long digit run).
    # Session 30: a space or dash may stand between the country code and the check digits (`DE 89 3704 ...`), even
    # between the two check digits (groups of three: `DE8 937 040 ...`); groups may be split by up to two spaces or
    # dashes, or a dot (`DE89.3704.0044...`, `DE89  3704`); the country code may follow a lower-case word it is glued
    # to (`stmtDE89370400440532013000.pdf`). Mod 97 decides, and half the account part at least must be digits unless
    # printed as IBANs are (prose read as one, `do 40 year old men get ...`, has few and is not).
    _start = regex.compile(r"(?<=(?:(?<![A-Za-z0-9])[A-Za-z]{2}|(?<=[a-z])[A-Z]{2})[ -]?)([0-9])[ -]?([0-9])"
                           r"(?=[ .-]{0,2}[A-Za-z0-9|])")
    # `O` for 0, `I`/`l`/`|` for 1 in the account part (`DE89 37O4 OO44 ...`): tried only when the IBAN as written
    # fails its check; a real account part's letters (`GB29 NWBK ...`, Ireland's `BOFI`) pass as written first.
    _LOOK = str.maketrans("OIL|", "0111")
    # review30f: formats with free characters (Qatar `4!a21!c`, Kuwait, Malta, Palestine, Azerbaijan ...) allow an
    # account part of letters mostly; one printed as IBANs are (compact or in fours, one case) is read as written.
    _printed = re.compile(r"[A-Z]{2}[0-9]{2}(?:[A-Z0-9]+|(?:[ -][A-Z0-9]{4})*[ -][A-Z0-9]{1,4})"
                          r"|[a-z]{2}[0-9]{2}(?:[a-z0-9]+|(?:[ -][a-z0-9]{4})*[ -][a-z0-9]{1,4})")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        n = len(text)
        # Found at the two check digits (a digit-first scan), the country code is the two
        # letters before them.
        for m in self._start.finditer(text):
            at = m.start() - 2 if text[m.start() - 1].isalpha() else m.start() - 3
            cc = text[at:at + 2].upper()
            length = IBAN_LENGTHS.get(cc)
            if length is None:
                continue
            chars: list[str] = []
            i = m.end()
            end = i
            while i < n and len(chars) < length - 4:
                c = text[i]
                if _iban_char(c):
                    chars.append(c.upper())
                    i += 1
                    end = i
                    continue
                gap = 2 if c in " -" and i + 1 < n and text[i + 1] == c else 1
                if c in " -." and i + gap < n and _iban_char(text[i + gap]):
                    i += gap
                else:
                    break
            if len(chars) != length - 4:
                continue
            if end < n and text[end].isascii() and text[end].isalnum():
                continue  # more letters/digits run on: not this IBAN
            bban = "".join(chars)
            read = bban.translate(self._LOOK)
            if 2 * sum(c.isdigit() for c in read) < len(read) and not self._printed.fullmatch(text, at, end):
                continue
            head = cc + m.group(1) + m.group(2)
            if (bban.isalnum() and iban_ok(head + bban)) or (read != bban and iban_ok(head + read)):
                yield Finding("IBAN_CODE", at, end, 1.0, self.name)


def _iban_char(c: str) -> bool:
    return c.isascii() and c.isalnum() or c == "|"


class UsSsnRecognizer:
    name = "checksum.us_ssn"
    entities = frozenset({"US_SSN"})
    _fmt = re.compile(r"(?=\d)(?<![\d-])(\d{3})([- .])(\d{2})\2(\d{4})(?![\d-]|\.\d)")
    _bare = re.compile(r"(?=\d)(?<![\d-])(\d{3})(\d{2})(\d{4})(?![\d-])")
    _ctx = re.compile(r"(?i)\b(?:ssn|ss#|ss no|social security|soc\.? sec|taxpayer|tin|itin)\b")
    # round 11: the word glued to the number in a file name or an id (`tax536228147.pdf`, `ssn_536228147`)
    _glued = re.compile(r"(?i)(?:ssn|tin|itin|tax|taxid|social)[_-]?\Z")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        for m in finditer_near_digits(self._fmt, text, pre):
            if us_ssn_ok(m.group(1), m.group(3), m.group(4)):
                yield Finding("US_SSN", m.start(), m.end(), 0.95, self.name)
        for m in finditer_near_digits(self._bare, text, pre):  # a bare 9-digit SSN needs a cue before it
            if us_ssn_ok(m.group(1), m.group(2), m.group(3)) and (
                    context_before(text, m.start(), self._ctx) or self._glued.search(text, max(0, m.start() - 12),
                                                                                       m.start())):
                yield Finding("US_SSN", m.start(), m.end(), 0.8, self.name)


class UkNinoRecognizer:
    name = "checksum.uk_nino"
    entities = frozenset({"UK_NINO"})
    _rx = re.compile(r"(?i)(?<![A-Za-z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        for m in finditer_near_digits(self._rx, text, prescan_of(text, pre)):
            compact = _compact(m.group()).upper()
            if uk_nino_ok(compact) and (m.group()[:2].isupper() or m.group()[:2].islower()):
                yield Finding("UK_NINO", m.start(), m.end(), 0.9, self.name)


class SePersonnummerRecognizer:
    name = "checksum.se_personnummer"
    entities = frozenset({"SE_PERSONNUMMER"})
    _rx = re.compile(r"(?=\d)(?<![\d-])((?:19|20)?)(\d{2})(\d{2})(\d{2})([-+]?)(\d{4})(?![\d]|-\d)")
    _ctx = re.compile(r"(?i)(?:personn(?:umm)?er|pnr|person(?:al)? (?:id|identity|number)|"
                         r"samordningsnummer|född|\bid\b|identitet)")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        for m in finditer_near_digits(self._rx, text, prescan_of(text, pre)):
            century, yy, mm, dd, sep, tail = m.groups()
            digits10 = yy + mm + dd + tail
            if not se_personnummer_ok(digits10):
                continue
            day = int(dd) - 60 if int(dd) > 60 else int(dd)
            year = int((century or "19") + yy)
            if not plausible_date(year, int(mm), day):
                continue
            if sep:
                score = 0.95
            elif century:
                score = 0.85
            elif context_before(text, m.start(), self._ctx):
                score = 0.8
            else:
                continue  # a bare 10-digit run passes Luhn and a date check too often
            yield Finding("SE_PERSONNUMMER", m.start(), m.end(), score, self.name)


class DeTaxIdRecognizer:
    name = "checksum.de_tax_id"
    entities = frozenset({"DE_TAX_ID"})
    _rx = re.compile(r"[1-9](?<![\d-][1-9])\d(?: ?\d{3}){3}(?![\d]|-\d)")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        for m in finditer_near_digits(self._rx, text, prescan_of(text, pre)):
            if de_tax_id_ok(m.group().replace(" ", "")):
                yield Finding("DE_TAX_ID", m.start(), m.end(), 0.85, self.name)


class FrInseeRecognizer:
    name = "checksum.fr_insee"
    entities = frozenset({"FR_INSEE"})
    _rx = re.compile(
        r"[12](?<![\dA-Za-z][12]) ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}(?![\d])"
    )

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        for m in finditer_near_digits(self._rx, text, prescan_of(text, pre)):
            if fr_insee_ok(_compact(m.group()).upper()):
                yield Finding("FR_INSEE", m.start(), m.end(), 0.9, self.name)


class NlBsnRecognizer:
    name = "checksum.nl_bsn"
    entities = frozenset({"NL_BSN"})
    _rx = re.compile(r"\d(?<![\d.-]\d)\d{3}\.?\d{2}\.?\d{3}(?![\d]|[.-]\d)")
    _ctx = re.compile(r"(?i)\b(?:bsn|burgerservicenummer|sofi(?:nummer)?|citizen service number)\b")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        for m in finditer_near_digits(self._rx, text, prescan_of(text, pre)):
            if nl_bsn_ok(m.group().replace(".", "")) and context_before(text, m.start(), self._ctx):
                yield Finding("NL_BSN", m.start(), m.end(), 0.85, self.name)


class EsDniRecognizer:
    name = "checksum.es_dni"
    entities = frozenset({"ES_DNI"})
    _rx = re.compile(r"(?i)(?<![A-Za-z0-9])(?:\d{8}|[XYZ]-?\d{7})[ -]?[A-Z](?![A-Za-z0-9])")
    _digits = re.compile(r"\d{7,8}")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        # anchored at 7-8 digit runs: a DNI starts at the run, a NIE one or two characters before it
        last = -1
        for d in finditer_near_digits(self._digits, text, prescan_of(text, pre)):
            for start in (d.start() - 2, d.start() - 1, d.start()):
                if start < 0 or start < last:
                    continue
                m = self._rx.match(text, start)
                if m and es_dni_ok(_compact(m.group()).upper()):
                    yield Finding("ES_DNI", m.start(), m.end(), 0.9, self.name)
                    last = m.end()
                    break


class ItFiscalCodeRecognizer:
    name = "checksum.it_fiscal_code"
    entities = frozenset({"IT_FISCAL_CODE"})
    _d = "[0-9LMNPQRSTUV]"  # omocodia: digits may be replaced by these letters
    _rx = re.compile(
        rf"(?i)(?<![A-Za-z0-9])[A-Z]{{6}}{_d}{{2}}[ABCDEHLMPRST]{_d}{{2}}[A-Z]{_d}{{3}}[A-Z](?![A-Za-z0-9])"
    )

    _alnum = class_table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        # A code is a word of exactly 16 ASCII letters and digits: only such words are tried.
        for a, b in prescan_of(text, pre).runs_of(self._alnum, 16, 16):
            m = self._rx.match(text, a, b)
            if m and it_fiscal_code_ok(m.group().upper()):
                yield Finding("IT_FISCAL_CODE", m.start(), m.end(), 1.0, self.name)


ID_RECOGNIZERS = (
    CardRecognizer,
    IbanRecognizer,
    UsSsnRecognizer,
    UkNinoRecognizer,
    SePersonnummerRecognizer,
    DeTaxIdRecognizer,
    FrInseeRecognizer,
    NlBsnRecognizer,
    EsDniRecognizer,
    ItFiscalCodeRecognizer,
)
