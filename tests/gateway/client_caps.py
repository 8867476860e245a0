"""What the per-client cap tests share (test_stream_cap.py, test_request_cap.py): the official SDKs speaking from a
loopback address of the test's choosing, and the refusal each API's client sees past a cap."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

MSG = [{"role": "user", "content": "hi"}]


def oai_from(g: Any, source: str = "127.0.0.1", headers: dict[str, str] | None = None,
             timeout: float = 30.0) -> openai.OpenAI:
    http = httpx.Client(transport=httpx.HTTPTransport(local_address=source), headers=headers, timeout=timeout)
    return g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="k", max_retries=0, http_client=http))


def ant_from(g: Any, source: str = "127.0.0.1", headers: dict[str, str] | None = None) -> anthropic.Anthropic:
    http = httpx2.Client(transport=httpx2.HTTPTransport(local_address=source), headers=headers, timeout=30)
    return g.keep(anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=0, http_client=http))  # (its own httpx)


def assert_refused(g: Any, api: str, stream: bool, setting: str) -> None:
    """A request of `api` ("openai", "anthropic", "responses") from 127.0.0.1 is refused with 429 in that API's
    schema, `Retry-After: 1`, and a message naming `setting`."""
    e: Any
    if api in ("openai", "responses"):
        with pytest.raises(openai.RateLimitError) as e:
            if api == "openai":
                oai_from(g).chat.completions.create(model="local", messages=MSG, stream=stream)
            else:
                oai_from(g).responses.create(model="local", input="hi", stream=stream)
        assert e.value.code == "rate_limit_exceeded"  # OpenAI's own words for a rate limit (type "requests")
    else:
        with pytest.raises(anthropic.RateLimitError) as e:
            ant_from(g).messages.create(model="local", max_tokens=20, messages=MSG, stream=stream)
        assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "rate_limit_error"
    assert e.value.response.headers["retry-after"] == "1"
    assert setting in e.value.message
