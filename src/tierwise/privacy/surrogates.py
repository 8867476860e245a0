"""Format-keeping surrogates: realistic fake values that stand in for a redacted one.

A placeholder such as `<CREDIT_CARD_1>` tells the remote model nothing about the shape of the
value; some tasks need the shape (validate this IBAN, format this phone number). A surrogate
keeps it: a card number of the same length that passes Luhn, an IBAN of the same country and
length whose mod-97 check digits are valid, an email and a phone number with the same layout.

Surrogates are deterministic per conversation: they are derived from an HMAC of the original
value under the conversation's secret, so the same value gets the same surrogate on every
turn, and nothing about the original can be read back from the surrogate without the secret.
The digits are random-looking, not the original's: only separators, lengths, the IBAN's
country code and the card's network prefix digit are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Callable, Iterator

_LOWER = string.ascii_lowercase
_UPPER = string.ascii_uppercase


def _stream(secret: bytes, value: str, attempt: int) -> Iterator[int]:
    """An endless deterministic byte stream keyed by (secret, value, attempt)."""
    counter = 0
    while True:
        block = hmac.new(secret, f"{attempt}:{counter}:{value}".encode(), hashlib.sha256).digest()
        yield from block
        counter += 1


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_check_digit(payload: list[int]) -> int:
    total = 0
    for i, d in enumerate(reversed(payload)):
        if i % 2 == 0:  # these are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def iban_valid(iban: str) -> bool:
    s = "".join(iban.split()).upper()
    if len(s) < 5 or not s[:2].isalpha() or not s[2:4].isdigit() or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _reshape(original: str, chars: list[str]) -> str:
    """Put `chars` into the alphanumeric slots of `original`, keeping its separators."""
    it = iter(chars)
    return "".join(next(it) if c.isalnum() else c for c in original)


def fake_card(value: str, secret: bytes, attempt: int = 0) -> str:
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 12:
        return fake_digits(value, secret, attempt)
    rnd = _stream(secret, value, attempt)
    payload = [int(digits[0])] + [next(rnd) % 10 for _ in range(len(digits) - 2)]
    payload.append(_luhn_check_digit(payload))
    return (
        _reshape(value, [str(d) for d in payload])
        if _only_digits_and_seps(value)
        else "".join(map(str, payload))
    )


def fake_iban(value: str, secret: bytes, attempt: int = 0) -> str:
    compact = "".join(value.split()).upper()
    if len(compact) < 5 or not compact[:2].isalpha():
        return fake_digits(value, secret, attempt)
    rnd = _stream(secret, value, attempt)
    bban = []
    for c in compact[4:]:
        if c.isdigit():
            bban.append(str(next(rnd) % 10))
        else:
            bban.append(_UPPER[next(rnd) % 26])
    country = compact[:2]
    moved = "".join(bban) + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    result = country + f"{check:02d}" + "".join(bban)
    # Keep the original's grouping (spaces every four characters, usually).
    it = iter(result)
    out = []
    for c in value.strip():
        if c.isspace():
            out.append(c)
        else:
            out.append(next(it))
    return "".join(out)


def fake_digits(value: str, secret: bytes, attempt: int = 0) -> str:
    """Same layout, every digit and letter replaced; a leading '+' and separators kept."""
    rnd = _stream(secret, value, attempt)
    out = []
    for c in value:
        if c.isdigit():
            out.append(str(next(rnd) % 10))
        elif c.isalpha():
            pool = _UPPER if c.isupper() else _LOWER
            out.append(pool[next(rnd) % 26])
        else:
            out.append(c)
    return "".join(out)


def fake_phone(value: str, secret: bytes, attempt: int = 0) -> str:
    """Same layout; an international number keeps its country calling code (via `phonenumbers`)."""
    keep = 0
    stripped = value.lstrip()
    if stripped.startswith("+"):
        try:
            import phonenumbers

            keep = len(str(phonenumbers.parse(stripped, None).country_code))
        except Exception:  # not parseable: replace every digit
            keep = 0
    fake = fake_digits(value, secret, attempt)
    if not keep:
        return fake
    out, seen = [], 0
    for orig, new in zip(value, fake, strict=True):
        if orig.isdigit():
            seen += 1
            out.append(orig if seen <= keep else new)
        else:
            out.append(new)
    return "".join(out)


def fake_email(value: str, secret: bytes, attempt: int = 0) -> str:
    """A fake address with the same local-part layout, on the reserved `example.com` domain."""
    local, _, _domain = value.partition("@")
    rnd = _stream(secret, value, attempt)
    fake_local = "".join(
        (_LOWER[next(rnd) % 26] if c.isalpha() else str(next(rnd) % 10) if c.isdigit() else c) for c in local
    )
    return f"{fake_local or 'user'}@example.com"


def _only_digits_and_seps(value: str) -> bool:
    return all(c.isdigit() or c in " -" for c in value)


# entity -> generator. Entities not listed here get placeholders, not surrogates.
GENERATORS: dict[str, Callable[[str, bytes, int], str]] = {
    "CREDIT_CARD": fake_card,
    "IBAN_CODE": fake_iban,
    "EMAIL_ADDRESS": fake_email,
    "PHONE_NUMBER": fake_phone,
    "US_SSN": fake_digits,
}


def make_surrogate(entity: str, value: str, secret: bytes, attempt: int = 0) -> str | None:
    """A surrogate for `value`, or None when `entity` has no format-keeping generator."""
    gen = GENERATORS.get(entity)
    return gen(value, secret, attempt) if gen is not None else None
