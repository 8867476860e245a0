"""Script agent: replace e-mail addresses, phone numbers and card/IBAN-like numbers with placeholders.

Reads {"input": <text>} on stdin; writes {"success", "data": {"text", "redacted"}, "error"}.
"""

import json
import re
import sys

PATTERNS = {
    "EMAIL": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    "IBAN": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}\b"),
    "CARD": re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    "PHONE": re.compile(r"\+?\d[\d ()-]{7,}\d"),
}


def main() -> None:
    try:
        text = json.load(sys.stdin).get("input")
        if not isinstance(text, str):
            raise ValueError("input must be text")
    except (ValueError, AttributeError) as e:
        print(json.dumps({"success": False, "data": None, "error": f"bad input: {e}"}))
        return
    counts = {}
    for label, pattern in PATTERNS.items():
        text, n = pattern.subn(f"[{label}]", text)
        counts[label] = n
    print(json.dumps({"success": True, "data": {"text": text, "redacted": counts}, "error": None}))


main()
