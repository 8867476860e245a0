"""examples/ensembles/scripts/redact.py, run as a script agent runs it (JSON on stdin, JSON on stdout).

Phone numbers are found by libphonenumber's rules (`phonenumbers`), so dates, times, ISBNs,
amounts and order numbers stay as written, and real phone formats of several countries go."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "ensembles" / "scripts" / "redact.py"


def redact(text: str, region: str = "US") -> dict:
    out = subprocess.run([sys.executable, str(SCRIPT)], input=json.dumps({"input": text}), capture_output=True,
                         text=True, timeout=60, env={"REDACT_REGION": region, "PATH": "/usr/bin:/bin"})
    reply = json.loads(out.stdout)
    assert reply["success"], reply
    return reply["data"]


@pytest.mark.parametrize("text", [
    "The meeting is on 2024-03-15.",
    "Due 03/15/2024, or 15.03.2024 in Europe, or 2024/03/15.",
    "Starts at 14:30:00 on 15 March 2024 and ends at 2024-03-15T16:45:00Z.",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2.",
    "ISBN-13 9780306406157 is the same book.",
    "Order 12345678 for 1,234,567.89 EUR, ticket #20240315.",
    "Version 10.0.19045.3693 of the build.",
])
def test_dates_times_isbns_and_numbers_stay(text):
    data = redact(text)
    assert data["text"] == text
    assert data["redacted"]["PHONE"] == 0 and data["redacted"]["CARD"] == 0


@pytest.mark.parametrize("text,region", [
    ("Call +46 70 123 45 67 today.", "US"),
    ("Call (415) 555-2671 today.", "US"),
    ("Call 212-555-0123 today.", "US"),
    ("Call +1 650-253-0000 today.", "GB"),
    ("Call +44 20 7946 0958 today.", "US"),
    ("Call 020 7946 0958 today.", "GB"),
    ("Call +49 30 901820 today.", "US"),
    ("Call +33 1 42 68 53 00 today.", "US"),
])
def test_phone_formats_are_redacted(text, region):
    data = redact(text, region)
    assert data["text"] == "Call [PHONE] today.", data
    assert data["redacted"]["PHONE"] == 1


def test_a_mixed_text():
    text = ("On 2024-03-15 at 14:30 jane@example.com (ISBN 978-3-16-148410-0) paid with 4111 1111 1111 1111 "
            "from DE89 3704 0044 0532 0130 00; call +46 70 123 45 67.")
    data = redact(text)
    assert data["text"] == ("On 2024-03-15 at 14:30 [EMAIL] (ISBN 978-3-16-148410-0) paid with [CARD] "
                            "from [IBAN]; call [PHONE].")
    assert data["redacted"] == {"EMAIL": 1, "IBAN": 1, "CARD": 1, "PHONE": 1}
