"""Structured output's string `format`s (verifiers/json_formats.py): a pydantic model's `datetime`, `date`, `UUID`
fields say `format: date-time/date/uuid` in the schema `.parse` sends, and the SDK validates the answer with the
model in pydantic's lax JSON mode. A value pydantic refuses must move the route on (else `ValidationError` in the
caller's code); a value pydantic accepts must stay local (else a frontier call for nothing). Real HTTP on loopback:
`local` is the OpenAI-format double, `frontier` the Anthropic one; the official openai SDK is the client."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import uuid
from typing import Any

import pydantic
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.security.test_structured_output import one_write
from tierwise.wire.strict_tools import _schema_reason


class Booking(pydantic.BaseModel):
    when: datetime.datetime
    day: datetime.date
    id: uuid.UUID


FRONTIER = Booking(when=datetime.datetime(2026, 12, 6, 9, 30, tzinfo=datetime.UTC), day=datetime.date(2026, 12, 7),
                   id=uuid.UUID("123e4567-e89b-12d3-a456-426614174000"))
LOCAL = {"when": "2026-12-06T09:30:00Z", "day": "2026-12-07", "id": "123e4567-e89b-12d3-a456-426614174000"}
KW = {"model": "main", "messages": [{"role": "user", "content": "book it"}]}

REFUSED = {  # what pydantic refuses, field by field (a local model's guesses)
    "when: yesterday": {"when": "yesterday"},
    "when: month 13": {"when": "2026-13-06T09:30:00Z"},
    "when: a leap second": {"when": "2026-12-06T23:59:60Z"},
    "day: tomorrow": {"day": "tomorrow"},
    "day: 30 February": {"day": "2026-02-30"},
    "day: no dashes": {"day": "20261207"},
    "id: n/a": {"id": "n/a"},
    "id: too short": {"id": "123e4567-e89b-12d3-a456"},
}
ACCEPTED = {  # what pydantic accepts that a stricter reading of the RFCs (or jsonschema's own checkers) refuses
    "when: naive": {"when": "2026-12-06T09:30:00"},
    "when: no seconds": {"when": "2026-12-06T09:30"},
    "when: a space": {"when": "2026-12-06 09:30:00"},
    "when: an offset": {"when": "2026-12-06T09:30:00+02:00"},
    "when: a date": {"when": "2026-12-06"},
    "day: a midnight date-time": {"day": "2026-12-07T00:00:00Z"},
    "id: no hyphens": {"id": "123e4567e89b12d3a456426614174000"},
    "id: braces": {"id": "{123e4567-e89b-12d3-a456-426614174000}"},
    "id: urn": {"id": "urn:uuid:123e4567-e89b-12d3-a456-426614174000"},
}


def _route(two_tier, openai_up, anthropic_up, *local: Any) -> Any:
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}},
                 breaker={"failures": 3, "cooldown": 60})
    openai_up.script(*local)
    anthropic_up.script(Reply(text=FRONTIER.model_dump_json()))
    return g


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_parse_gets_the_frontiers_object_when_a_local_value_is_off_its_format(two_tier, openai_up, anthropic_up,
                                                                                case):
    """Relayed, each answer made `chat.completions.parse` raise pydantic's `ValidationError` in the caller's code
    (`date-time` was not checked at all; the others were, by jsonschema, for these values)."""
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=json.dumps({**LOCAL, **REFUSED[case]})))
    done = oai(g).chat.completions.parse(**KW, response_format=Booking)
    assert done.choices[0].message.parsed == FRONTIER
    assert len(anthropic_up.requests) == 1
    g.flush()
    assert "`format` at /" in json.dumps(g.ledger.query()[-1].steps)


@pytest.mark.parametrize("case", ["when: yesterday", "day: tomorrow", "id: n/a"])
def test_the_stream_helper_too(two_tier, openai_up, anthropic_up, case):
    g = _route(two_tier, openai_up, anthropic_up, one_write(json.dumps({**LOCAL, **REFUSED[case]})))
    with oai(g).chat.completions.stream(**KW, response_format=Booking) as s:
        for _ in s:
            pass
        assert s.get_final_completion().choices[0].message.parsed == FRONTIER


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_a_value_pydantic_accepts_stays_local(two_tier, openai_up, anthropic_up, case):
    """Refused before for `day` and `id` (jsonschema's `date` and `uuid` checkers are stricter than pydantic):
    a frontier call for an answer the caller's model parses."""
    answer = {**LOCAL, **ACCEPTED[case]}
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=json.dumps(answer)))
    done = oai(g).chat.completions.parse(**KW, response_format=Booking)
    assert done.choices[0].message.parsed == Booking.model_validate_json(json.dumps(answer))
    assert not anthropic_up.requests


FORMATS: dict[str, tuple[Any, list[str]]] = {  # format → (the pydantic type that emits it, values)
    "date-time": (datetime.datetime, ["2026-12-06T09:30:00Z", "2026-12-06t09:30:00z", "2026-12-06T09:30:00.123456789Z",
                                      "2026-12-06T09:30:00+0200", "2026-12-06_09:30:00", "1700000000", "0000-01-01T00:00:00Z",
                                      "2026-12-06T09:30:00.Z", "now", ""]),
    "date": (datetime.date, ["2026-12-07", "0", "1700000000", "2026-W49-1", "2026-12-7"]),
    "time": (datetime.time, ["09:30:00", "09:30", "09:30:00Z", "09:30:00+02:00", "09:30:00.1234567", "3600", "9",
                             "noon", "23:59:60"]),
    "duration": (datetime.timedelta, ["P1D", "PT1H30M", "P1W", "-P1D", "P1.5D", "1:30:00", "1 day", "1d", "3600",
                                      "PT", "P", "soon"]),
    "uuid": (uuid.UUID, ["123E4567-E89B-12D3-A456-426614174000", "00000000-0000-0000-0000-000000000000", "x" * 36]),
    "uri": (pydantic.AnyUrl, ["https://example.com/a?b=1", "mailto:a@b.com", "urn:isbn:0451450523", "file:///tmp/x",
                              "example.com", "/relative/path", "http://", "not a url"]),
    "ipv4": (ipaddress.IPv4Address, ["1.2.3.4", "1.2.3.256", "01.2.3.4", "16909060", "::1"]),
    "ipv6": (ipaddress.IPv6Address, ["::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4", "zz::1"]),
    "email": (pydantic.EmailStr, ["ada@example.com", "Ada <ada@example.com>", "ada@localhost", "a@b", "ada@@example.com",
                                  "ada@example..com", ".ada@example.com", "ada@-example.com", "ada example@x.com",
                                  "@example.com", "ada@", "ada", "ada@ex_ample.com", "üser@例え.jp"]),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_the_check_refuses_exactly_what_pydantic_refuses(fmt):
    """Every format verifiers/json_formats.py checks as pydantic does, against the laxest pydantic type
    that emits it: the gateway's check (strict_tools' cached validators, which structured output uses) and
    `model_validate_json` agree on every value."""
    t, values = FORMATS[fmt]
    model = pydantic.create_model("M", v=(t, ...))
    schema = model.model_json_schema()
    assert schema["properties"]["v"]["format"] == fmt
    for value in values:
        try:
            model.model_validate_json(json.dumps({"v": value}))
            pydantic_ok = True
        except pydantic.ValidationError:
            pydantic_ok = False
        refused = asyncio.run(_schema_reason(schema, {"v": value}))
        assert (refused is None) == pydantic_ok, (fmt, value, refused)


def test_an_anthropic_clients_output_format_too(two_tier, openai_up, anthropic_up):
    """`messages.parse(output_format=Booking)`: the anthropic SDK validates with the model as well."""
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=json.dumps({**LOCAL, "when": "yesterday"})))
    done = ant(g).messages.parse(model="main", max_tokens=200, output_format=Booking,
                                 messages=[{"role": "user", "content": "book it"}])
    assert done.parsed_output == FRONTIER
