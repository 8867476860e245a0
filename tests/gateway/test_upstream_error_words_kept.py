"""An upstream's error words are decoded only to find what they hide (review34c). wire11's `readable` (percent-encoding,
JSON escapes, HTML references) replaced every message by its decoded form, so words the client needs were changed
where nothing was hidden: a documentation link's `&timestamp=`, `&param=` and `&section=` became `×tamp=`, `¶m=` and
`§ion=` (HTML's references without a semicolon), `\\"` lost its backslash, a literal `%20` became a space. Now the
decoded form is shown only when it reveals an address or a secret to mask; else the words as written. And the decoding
ran over the whole message before the cut to 2,000 characters (a 2xx body's or a stream event's message has no bound
of its own): it now reads at most `error_pages.DECODE_CHARS`. Real HTTP, official SDK."""

from __future__ import annotations

import openai
import orjson
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai
from tierwise.providers import error_pages

BOUND = 8192  # (error_pages.DECODE_CHARS)
KEPT = [
    "see https://docs.example.com/errors?code=429&timestamp=1&param=model&section=limits",
    'expected \\"string\\" at position 5; the stop sequence \\d+\\.\\d+ is not valid',
    "the prompt holds the literal text %20 and %41%42",
    "price is 5&cent per token; &not allowed; use &lt;think&gt; tags",
]


def _said(g) -> str:
    with pytest.raises(openai.APIError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    body = getattr(e.value, "body", None)
    return str(body.get("message")) if isinstance(body, dict) else str(e.value)


def _gateway(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


@pytest.mark.parametrize("said", KEPT, ids=["link", "escapes", "percent", "entities"])
def test_words_that_hide_nothing_reach_the_client_as_written(two_tier, openai_up, said):
    g = _gateway(two_tier)
    openai_up.script(Raw(status=400, body=orjson.dumps({"error": {"message": said, "type": "invalid_request_error"}})))
    text = _said(g)
    assert text.endswith(": " + said), text


def test_a_proxys_plain_text_that_hides_nothing_is_kept(two_tier, openai_up):
    g = _gateway(two_tier)
    said = "upstream said: literal %20 and 5&cent; and \\\"quoted\\\""
    openai_up.script(Raw(status=502, body=said.encode(), content_type="text/plain"))
    assert said in _said(g)


def test_an_encoded_address_next_to_such_words_is_still_masked(two_tier, openai_up):
    g = _gateway(two_tier)
    said = "connect to 10&#46;0&#46;0&#46;1 refused; see https://docs.example.com/?a=1&section=2"
    openai_up.script(Raw(status=400, body=orjson.dumps({"error": {"message": said, "type": "invalid_request_error"}})))
    text = _said(g)
    assert "[address]" in text and "&#46;" not in text and "0.0.1" not in text, text


def test_the_decoding_reads_a_bounded_part_of_a_long_message(monkeypatch):
    """A message of 1 MiB of references: what is decoded is cut first (it held the event loop ~0.5 s an error)."""
    read: list[int] = []
    real = error_pages.readable

    def counting(text: str) -> str:
        read.append(len(text))
        return real(text)

    monkeypatch.setattr(error_pages, "readable", counting)
    out = error_pages.masked("&amp;#46;" * 120_000, 400)
    assert read and max(read) <= BOUND and len(out) <= 2000, read
    read.clear()
    error_pages.client_message("p", 502, b"&amp;#46;" * 120_000, {"content-type": "text/plain"})
    assert read and max(read) <= BOUND, read
