"""Structured output's string formats: does the gateway's schema check (strict_tools._check, the cached validators
structured output uses) refuse exactly what the caller's pydantic model refuses in `model_validate_json` (what the
openai SDK's `.parse` calls)? For each format a pydantic model emits, values a local model might write, checked
against the laxest pydantic type that emits the format. Prints, per format: values, pydantic refuses, the check
refuses, over-refused (a frontier call for nothing), under-refused (`ValidationError` in the caller's code).

    PYTHONPATH=src .venv/bin/python bench/structured_formats.py [--show]
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import sys
import uuid

import pydantic

from tierwise.wire.strict_tools import _check

VALUES = {
    "date-time": (datetime.datetime, [
        "2026-12-06T09:30:00Z", "2026-12-06T09:30:00+02:00", "2026-12-06T09:30:00", "2026-12-06T09:30",
        "2026-12-06 09:30:00", "2026-12-06t09:30:00z", "2026-12-06", "1700000000", "2026-12-06T09:30:00.123456789Z",
        "2026-12-06T09:30:00+0200", "2026-12-06T23:59:60Z", "yesterday", "now", "", "2026-13-06T09:30:00Z",
        "0000-01-01T00:00:00Z", "2026-12-06T09:30:00.Z", "06/12/2026 09:30", "Dec 6, 2026"]),
    "date": (datetime.date, [
        "2026-12-07", "2026-12-07T00:00:00", "2026-12-07T00:00:00Z", "0", "20261207", "2026-W49-1", "2026-12-7",
        "2026-02-30", "tomorrow", "07/12/2026", "2026-12-07T09:30:00Z"]),
    "time": (datetime.time, [
        "09:30:00", "09:30", "09:30:00Z", "09:30:00+02:00", "09:30:00.5", "09:30:00.1234567", "3600", "9", "noon",
        "23:59:60", "9:30 am"]),
    "duration": (datetime.timedelta, [
        "P1D", "PT1H30M", "P1Y", "P1W", "P1DT2H", "-P1D", "P1.5D", "1:30:00", "1 day", "1d", "3600", "PT", "P",
        "soon", "90 minutes"]),
    "uuid": (uuid.UUID, [
        "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
        "123e4567e89b12d3a456426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
        "urn:uuid:123e4567-e89b-12d3-a456-426614174000", "n/a", "123e4567-e89b-12d3-a456", "x" * 36]),
    "uri": (pydantic.AnyUrl, [
        "https://example.com/a?b=1", "mailto:a@b.com", "urn:isbn:0451450523", "file:///tmp/x", "ftp://x.y",
        "example.com", "/relative/path", "http://", "not a url"]),
    "ipv4": (ipaddress.IPv4Address, ["1.2.3.4", "1.2.3.256", "01.2.3.4", "16909060", "::1", "localhost"]),
    "ipv6": (ipaddress.IPv6Address, ["::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4", "zz::1"]),
}


def main() -> None:
    show = "--show" in sys.argv
    print(f"{'format':10} {'values':>6} {'pydantic refuses':>16} {'check refuses':>13} {'over':>5} {'under':>5}")
    totals = [0, 0, 0, 0, 0]
    for fmt, (t, values) in VALUES.items():
        model = pydantic.create_model("M", v=(t, ...))
        schema = model.model_json_schema()
        row = [len(values), 0, 0, 0, 0]
        for value in values:
            try:
                model.model_validate_json(json.dumps({"v": value}))
                p_ok = True
            except pydantic.ValidationError:
                p_ok = False
            c_ok = _check(schema, {"v": value}).passed
            row[1] += not p_ok
            row[2] += not c_ok
            row[3] += p_ok and not c_ok
            row[4] += c_ok and not p_ok
            if show and p_ok != c_ok:
                print(f"    {'over ' if p_ok else 'under'} {value!r}")
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        print(f"{fmt:10} {row[0]:>6} {row[1]:>16} {row[2]:>13} {row[3]:>5} {row[4]:>5}")
    print(f"{'all':10} {totals[0]:>6} {totals[1]:>16} {totals[2]:>13} {totals[3]:>5} {totals[4]:>5}")


if __name__ == "__main__":
    main()
