"""Script agent: replace e-mail addresses, phone numbers and card/IBAN numbers with placeholders.

Reads {"input": <text>, "region": "GB"?} on stdin; writes {"success", "data": {"text", "redacted"}, "error"}.

Phone numbers are found with `phonenumbers` (Google's libphonenumber rules), which knows each
country's numbering plan: dates, times, ISBNs, order numbers and amounts are not phone numbers
and stay as they are. A number without a country code is read in `region` (default: $REDACT_REGION,
else US). Cards must pass the Luhn check and IBANs the ISO 13616 mod-97 check, so other long
digit runs (ISBNs, invoice numbers) are left alone too.

`phonenumbers` is a tierwise dependency, so this script needs the Python tierwise runs with: the
example config lists this ensemble under `ensembles.trusted` (in the code sandbox only the
standard library is importable).
"""

import json
import os
import re
import sys

try:
    import phonenumbers
except ImportError:  # in the sandbox, or a Python without tierwise's dependencies
    phonenumbers = None

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


def _luhn_ok(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) == 13 and digits[:2] == [9, 7]:  # an ISBN-13 (978/979...), not a card
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _sub(pattern: re.Pattern[str], label: str, text: str, valid=lambda s: True) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        if not valid(m.group(0)):
            return m.group(0)
        count += 1
        return f"[{label}]"

    return pattern.sub(repl, text), count


def _phones(text: str, region: str) -> tuple[str, int]:
    # VALID: the number must fit a real numbering plan, and the matcher refuses dates, times and
    # digit runs glued to other text, which the looser levels accept.
    matches = list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))
    for m in reversed(matches):
        text = text[:m.start] + "[PHONE]" + text[m.end:]
    return text, len(matches)


def redact(text: str, region: str) -> tuple[str, dict[str, int]]:
    counts = {}
    text, counts["EMAIL"] = _sub(EMAIL, "EMAIL", text)
    text, counts["IBAN"] = _sub(IBAN, "IBAN", text, _iban_ok)
    text, counts["CARD"] = _sub(CARD, "CARD", text, _luhn_ok)
    text, counts["PHONE"] = _phones(text, region)
    return text, counts


def main() -> None:
    try:
        payload = json.load(sys.stdin)
        text = payload.get("input")
        if not isinstance(text, str):
            raise ValueError("input must be text")
    except (ValueError, AttributeError) as e:
        print(json.dumps({"success": False, "data": None, "error": f"bad input: {e}"}))
        return
    if phonenumbers is None:
        print(json.dumps({"success": False, "data": None, "error": (
            "the phonenumbers package is not importable here: run this script with the Python tierwise "
            "is installed in (list the ensemble under `ensembles.trusted`; the sandbox has only the standard library)")}))
        return
    region = str(payload.get("region") or os.environ.get("REDACT_REGION") or "US").upper()
    text, counts = redact(text, region)
    print(json.dumps({"success": True, "data": {"text": text, "redacted": counts}, "error": None}))


if __name__ == "__main__":
    main()
