"""JSON Schema `format`s checked the way the client's SDK parses them.

A pydantic model's schema says `format` for its typed strings (`datetime` → `date-time`, `date`, `time`,
`timedelta` → `duration`, `UUID` → `uuid`, `AnyUrl`/`HttpUrl` → `uri`, `IPv4Address`/`IPv6Address` → `ipv4`/`ipv6`,
`EmailStr` → `email`), and the openai SDK's `chat.completions.parse` (`responses.parse`, the anthropic SDK's
`messages.parse`) validates the answer with `model_validate_json`: pydantic's lax JSON mode. An answer whose value
pydantic refuses ("yesterday" for a `datetime`) raises `ValidationError` in the caller's code, so the check must
refuse it; one pydantic accepts must pass, since refusing it costs a frontier call for nothing.

jsonschema's own checkers miss in both directions here: `date-time`/`time`/`duration`/`uri` are not checked at all
without extra packages, and the ones that are refuse values pydantic accepts (`date`: "2024-05-01T00:00:00";
`uuid`: the unhyphenated, braced and `urn:uuid:` forms; `ipv6`: a scoped "fe80::1%eth0"). The RFC 3339 package
jsonschema would use for `date-time` (`rfc3339-validator`) wants seconds, a `T` and an offset, so it refuses the naive
"2024-05-01T10:20:30" that pydantic itself writes for a naive `datetime`, as well as "2024-05-01T10:20" and
"2024-05-01 10:20:30". So each of those formats is checked by pydantic's parse of the laxest type that emits it
(pydantic-core's own parsers, no extra package): what passes is what every pydantic model with that format accepts
(`AwareDatetime`, `HttpUrl` and the like refuse more; the gateway never sees which type the client used).
`email` uses pydantic's `EmailStr` (`email-validator`, pydantic's own email extra, is a dependency; where an
environment removed it, jsonschema's check: an `@`). Formats outside the table keep jsonschema's checker. bench/RESULTS.md "formats25" has
the table of what each side accepts.

Not refused although OpenAI's strict mode would not write them: the numeric strings pydantic reads as Unix times
("1700000000" for `date-time`, "0" for `date`): a client that validates with the RFCs (zod's `.datetime()`) refuses
them; a pydantic client, the SDK's `.parse`, does not.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema
import orjson
import pydantic

_LAXEST: dict[str, Any] = {  # format → the laxest pydantic type whose schema says it
    "date-time": datetime.datetime,
    "date": datetime.date,
    "time": datetime.time,
    "duration": datetime.timedelta,
    "uuid": uuid.UUID,
    "uri": pydantic.AnyUrl,
    "ipv4": ipaddress.IPv4Address,
    "ipv6": ipaddress.IPv6Address,
}


def _laxest() -> dict[str, Any]:
    types = dict(_LAXEST)
    try:
        import email_validator  # noqa: F401 - pydantic's EmailStr needs it

        types["email"] = pydantic.EmailStr
    except ImportError:
        pass
    return types


def _parses_as(adapter: pydantic.TypeAdapter[Any]) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if not isinstance(instance, str):
            return True  # a format says nothing about other types
        try:
            adapter.validate_json(orjson.dumps(instance))  # the caller's model_validate_json, on this value
        except (pydantic.ValidationError, TypeError):  # TypeError: a lone surrogate, which no format admits
            return False
        return True
    return check


@functools.cache
def _pydantic_checks() -> dict[str, tuple[Callable[[object], bool], tuple[type[Exception], ...]]]:
    return {name: (_parses_as(pydantic.TypeAdapter(t)), ()) for name, t in _laxest().items()}


@functools.cache
def format_checker(base: jsonschema.FormatChecker) -> jsonschema.FormatChecker:
    """The draft's format checker (`base`) with the formats above checked as pydantic parses them."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = {**base.checkers, **_pydantic_checks()}
    return checker
