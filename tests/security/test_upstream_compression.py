"""A hostile upstream answers with a gzip bomb: a few kilobytes on the wire (its Content-Length) that
inflate to gigabytes. `max_response_bytes` bounds what the answer inflates to, not what it weighs
compressed (the gateway asks for compressed answers: aiohttp sends Accept-Encoding and inflates).
Real HTTP: raw gzip bodies from the doubles, requests from the official SDKs."""

from __future__ import annotations

import zlib

import anthropic
import openai
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

CAP = 1 << 20  # the providers' max_response_bytes in these tests
INFLATED = 16 * CAP  # what each bomb inflates to (~16 KB compressed)


def gzip_bomb(prefix: bytes, filler: bytes, suffix: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    parts = [z.compress(prefix)]
    block = filler * (CAP // len(filler))
    parts += [z.compress(block) for _ in range(INFLATED // len(block))]
    parts += [z.compress(suffix), z.flush()]
    return b"".join(parts)


OPENAI_BODY = (b'{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":'
               b'{"role":"assistant","content":"', b'"},"finish_reason":"stop"}]}')
ANTHROPIC_BODY = (b'{"id":"x","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"',
                  b'"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}')


@pytest.fixture
def capped(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local"], "retries": 0},
        "remote": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    for p in cfg["providers"].values():
        p["max_response_bytes"] = CAP
    return gateway(cfg)


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_a_gzip_bomb_answer_is_held_to_max_response_bytes(capped, openai_up, anthropic_up, upstream):
    if upstream == "openai":
        double, route, (head, tail) = openai_up, "main", OPENAI_BODY
    else:
        double, route, (head, tail) = anthropic_up, "remote", ANTHROPIC_BODY
    bomb = gzip_bomb(head, b" ", tail)
    assert len(bomb) < CAP // 8  # its Content-Length is well under the cap
    double.script(Raw(body=bomb, headers={"content-encoding": "gzip"}))
    with pytest.raises(openai.APIStatusError) as e:
        oai(g := capped).chat.completions.create(model=route, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 502
    assert f"larger than {CAP} bytes (max_response_bytes)" in e.value.body["message"]
    double.script(Raw(body=bomb, headers={"content-encoding": "gzip"}))
    with pytest.raises(anthropic.APIStatusError) as ea:
        ant(g).messages.create(model=route, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert ea.value.status_code == 502 and "max_response_bytes" in ea.value.body["error"]["message"]


def test_a_compressed_answer_within_the_cap_is_still_read(capped, openai_up):
    """Compression itself is fine: an ordinary gzip'd answer arrives whole."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = z.compress(OPENAI_BODY[0] + b"small answer" + OPENAI_BODY[1]) + z.flush()
    openai_up.script(Raw(body=body, headers={"content-encoding": "gzip"}))
    r = oai(capped).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "small answer"


def test_a_gzip_bomb_stream_is_held_to_max_response_bytes(capped, openai_up):
    event = b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"aaaa"}}]}\n\n'
    openai_up.script(Raw(body=gzip_bomb(b"", event, b"data: [DONE]\n\n"), content_type="text/event-stream",
                         headers={"content-encoding": "gzip"}))
    stream = oai(capped).chat.completions.create(model="main", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}])
    received = 0
    with pytest.raises(openai.APIError, match="max_response_bytes"):
        for chunk in stream:
            received += len(chunk.choices[0].delta.content or "") if chunk.choices else 0
    assert received <= CAP
