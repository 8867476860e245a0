"""An upstream off its own schema (a hostile or buggy local server, a proxy in between): every shape is an
upstream error in the client's API schema, never the gateway's own "internal error" (a crash in a codec).
Real HTTP: raw bodies from the OpenAI-format double, requests in each client API."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from tests.doubles import Raw

TEXT = 'data: {"choices":[{"delta":{"content":"hello"}}]}\n\n'
STREAMS = {
    "tool_calls is a string": 'data: {"choices":[{"delta":{"tool_calls":"x"}}]}\n\n',
    "delta is a list": 'data: {"choices":[{"delta":[1]}]}\n\n',
    "choices is a string after text": TEXT + 'data: {"choices":"x"}\n\n',
    "a tool call's name is a number": 'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":5,"function":'
                                      '{"name":7,"arguments":{"a":1}}}]},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n',
}
BODIES = {
    "a tool call's name is a number": '{"choices":[{"message":{"tool_calls":[{"id":9,"function":{"name":5,"arguments":"{}"}}]}}]}',
}
REQUESTS = {
    "openai": ("/v1/chat/completions", {"model": "main", "messages": [{"role": "user", "content": "hi"}]}),
    "anthropic": ("/v1/messages", {"model": "main", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
    "responses": ("/v1/responses", {"model": "main", "input": "hi"}),
}


def call(g, api: str, stream: bool) -> tuple[int, str]:
    path, body = REQUESTS[api]
    with httpx.stream("POST", g.url + path, json={**body, "stream": stream}, timeout=10) as r:
        return r.status_code, b"".join(r.iter_bytes()).decode()


@pytest.mark.parametrize("api", sorted(REQUESTS))
@pytest.mark.parametrize("shape", sorted(STREAMS))
def test_a_stream_off_its_schema_is_an_upstream_error(two_tier, openai_up, api, shape):
    g = two_tier(routes={"main": ["local"]})
    openai_up.script(Raw(body=STREAMS[shape], content_type="text/event-stream"))
    status, text = call(g, api, True)
    assert "internal error" not in text and status != 500, (status, text[:400])
    # an error event, a 502, or (the first chunk was bad, so the route's retry was free to go) the next answer
    assert status in (200, 502), (status, text[:400])


@pytest.mark.parametrize("api", sorted(REQUESTS))
@pytest.mark.parametrize("shape", sorted(BODIES))
def test_an_answer_off_its_schema_is_an_upstream_error_or_read_as_text(two_tier, openai_up, api, shape):
    g = two_tier(routes={"main": ["local"]})
    openai_up.script(Raw(body=BODIES[shape]))
    status, text = call(g, api, False)
    assert "internal error" not in text and status != 500, (status, text[:400])


ERROR_EVENTS = {  # how an OpenAI-format upstream may say a stream failed (the openai SDK reads both as errors)
    "data with an error object": 'data: {"error":{"message":"bad key SECRET PAD","type":"x"}}\n\n',
    # `event: error` whose data has no `error` member was relayed raw, as a chunk of the answer, key and all
    "an `event: error` message": 'event: error\ndata: {"message":"bad key SECRET PAD"}\n\n',
}


@pytest.mark.parametrize("api", sorted(REQUESTS))
@pytest.mark.parametrize("started", [False, True])
@pytest.mark.parametrize("shape", sorted(ERROR_EVENTS))
def test_an_upstream_stream_error_is_bounded_and_scrubbed(gateway, openai_up, anthropic_up, monkeypatch, api, started,
                                                          shape):
    """An OpenAI-format upstream's error event (before or after the first chunk) carries the key the gateway
    sent it and 200 KB of text: the client, the log and the ledger get a short message without the key."""
    from tests.harness import two_tier_config

    secret = "sk-local-secret-1234567890abcdef"
    monkeypatch.setenv("LOCAL_KEY", secret)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    cfg["providers"]["localsrv"]["api_key_env"] = "LOCAL_KEY"
    g = gateway(cfg)
    error = ERROR_EVENTS[shape].replace("SECRET", secret).replace("PAD", "A" * 200_000)
    openai_up.script(Raw(body=(STREAMS["choices is a string after text"].split("\n\n")[0] + "\n\n" if started else "")
                         + error, content_type="text/event-stream"))
    status, text = call(g, api, True)
    assert status in (200, 502) and "bad key" in text, (status, text[:300])
    assert secret not in text and len(text) < 20_000, len(text)
    g.flush()
    row = g.ledger.query()[-1]
    assert secret not in (row.error_message or "") and len(row.error_message or "") < 5_000


@pytest.mark.parametrize("count", ["1e30", "-5", "123456789012345678901234567890", '"12"', "true"])
def test_count_tokens_from_an_upstream_is_a_sane_count(gateway, openai_up, anthropic_up, count):
    """`/v1/messages/count_tokens` relays an Anthropic upstream's count: a count past 64 bits made the answer
    fail to encode (a 500), a negative one went to the client as it was."""
    from tests.harness import two_tier_config

    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    anthropic_up.count_tokens_raw = ('{"input_tokens": ' + count + "}").encode()
    r = httpx.post(g.url + "/v1/messages/count_tokens", json={
        "model": "frontier", "messages": [{"role": "user", "content": "hello there"}]}, timeout=10)
    assert r.status_code == 200, r.text
    n = r.json()["input_tokens"]
    assert type(n) is int and 0 <= n < 2**31, n


EMBEDDING_ANSWERS = {  # an upstream's 200 answers to POST /v1/embeddings that are not embeddings
    "a chat completion": '{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",'
                         '"content":"hi"},"finish_reason":"stop"}]}',
    "an array": "[1, 2, 3]",
    "no data": '{"object":"list","data":null,"model":"m"}',
    "an item without its embedding": '{"object":"list","data":[{"object":"embedding","index":0}],"model":"m"}',
    "an error object sent with 200": '{"object":"error","message":"invalid key Bearer SECRET","code":401}',
    "an error member sent with 200": '{"error":{"message":"invalid key Bearer SECRET","type":"auth"}}',
}


@pytest.mark.parametrize("shape", sorted(EMBEDDING_ANSWERS))
def test_an_embeddings_answer_off_its_schema_is_a_502(gateway, openai_up, anthropic_up, monkeypatch, shape):
    """`POST /v1/embeddings` relayed whatever JSON the upstream sent as a 200: the openai SDK then failed in the
    caller's code (AttributeError, "No embedding data received"), and an error object's text, with the key the
    gateway had sent, reached the client as it was."""
    import openai

    from tests.gateway.conftest import oai
    from tests.harness import two_tier_config

    secret = "sk-local-secret-embed-1234567890abcdef"
    monkeypatch.setenv("LOCAL_KEY", secret)
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["providers"]["localsrv"]["api_key_env"] = "LOCAL_KEY"
    g = gateway(cfg)
    openai_up.embeddings_raw = EMBEDDING_ANSWERS[shape].replace("SECRET", secret).encode()
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).embeddings.create(model="local", input="hello")
    assert e.value.status_code == 502, e.value
    assert secret not in str(e.value.body) and secret not in e.value.response.text
    openai_up.embeddings_raw = None  # an answer of its schema is still relayed
    assert len(oai(g).embeddings.create(model="local", input=["a", "b"]).data) == 2


def test_a_stream_event_of_endless_lines_is_an_upstream_error(two_tier, openai_up):
    """An event within `max_stream_event_bytes` made of a hundred thousand `data:` lines (legal SSE: the lines'
    data are joined) was split into one bytes object per line: 8 MB of them held 140 MB while read, per stream.
    Past 100,000 lines an event is an upstream error (the stream's error event, or a 502)."""
    import openai

    from tests.gateway.conftest import oai

    g = two_tier(routes={"main": ["local"]})
    lines = 'data: {"choices":[{"index":0,"delta":{"content":"hello"}}]}\n' + "data:\n" * 100_000 + "\n"
    openai_up.script(Raw(body=lines + "data: [DONE]\n\n", content_type="text/event-stream"))
    with pytest.raises(openai.APIError) as e:
        for _ in oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}],
                                                stream=True):
            pass
    assert "100000 lines" in str(e.value), e.value
