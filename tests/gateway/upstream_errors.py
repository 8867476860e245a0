"""Shared pieces of the tests of an upstream's error text as the client reads it (the address mask, the words it
keeps): a route to the local double alone, an error text in either carrier, and the error the OpenAI SDK raised."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai


def local_only(two_tier: Any) -> Any:
    """A gateway whose route `main` reaches the local (OpenAI) double alone, without retries."""
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def script_error(up: Any, said: str, carrier: str) -> None:
    """`said` as a provider's JSON error message (`json`, in a 200 body) or a proxy's plain text 502 (`text`)."""
    if carrier == "json":
        up.script(Raw(body=orjson.dumps({"error": {"message": said}})))
    elif carrier == "text":
        up.script(Raw(status=502, body=said.encode(), content_type="text/plain"))
    else:
        raise ValueError(carrier)


def error_said(g: Any) -> str:
    """The whole error body the client got for one chat request (its text where there is no body)."""
    with pytest.raises(openai.APIError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    body = getattr(e.value, "body", None)
    return orjson.dumps(body).decode() if body is not None else str(e.value)


def said_through(two_tier: Any, up: Any, said: str, carrier: str) -> str:
    """The error body the client reads when `up`, the local double that route `main` reaches alone (local_only),
    says `said` in `carrier` (script_error)."""
    g = local_only(two_tier)
    script_error(up, said, carrier)
    return error_said(g)
