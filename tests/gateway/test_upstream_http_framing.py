"""An upstream whose answer is not valid HTTP/1.1 framing (wire5): a 502 (or the stream's error event) in the
client's schema that says so, never a 500 or a hang
(it said `provider 'p': ClientResponseError` / `ServerDisconnectedError`). A raw asyncio server plays the upstream."""

from __future__ import annotations

import asyncio
import json
import threading

import anthropic
import openai
import pytest

C = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _chunk(b: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(b), b)


FIRST = _chunk(b"data: " + json.dumps({**C, "choices": [{"index": 0, "delta": {"content": "Hello"}}]}).encode()
               + b"\n\n")
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
ANSWERS = {
    "a chunk size that is not hex": HEAD + b"transfer-encoding: chunked\r\n\r\n" + FIRST + b"zz\r\nxx\r\n",
    "content-length and chunked": HEAD + b"content-length: 10\r\ntransfer-encoding: chunked\r\n\r\n" + FIRST,
    "a chunk size past 64 bits": HEAD + b"transfer-encoding: chunked\r\n\r\n" + FIRST + b"f" * 23 + b"\r\n",
    "nothing: the connection closed": b"",
}
SAYS = {"nothing: the connection closed": "closed the connection without a whole answer"}


@pytest.fixture
def raw_upstream():
    answer: dict[str, bytes] = {}

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await r.readuntil(b"\r\n\r\n")
            if "drip" in answer:  # a head that never ends: its first line, then a piece of it every 0.2 s
                w.write(answer.get("first", b""))
                while True:
                    w.write(answer["drip"])
                    await w.drain()
                    await asyncio.sleep(0.2)
            w.write(answer["bytes"])
            await w.drain()
            if answer["bytes"]:
                await asyncio.sleep(0.5)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield answer, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    async def shutdown() -> None:
        # The handlers end (their `finally` closes the connection) and the transports finish closing before the
        # loop stops: stopped at once, a transport was left "closing" with its socket open, for the garbage
        # collector to find in a later test (ResourceWarning: unclosed transport).
        server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.mark.parametrize("shape", sorted(ANSWERS))
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_off_http_framing_is_a_502_that_says_so(gateway, raw_upstream, shape, stream):
    answer, url = raw_upstream
    answer["bytes"] = ANSWERS[shape]
    url = url.replace("http://", "http://user:s3cret-in-url@")  # (review28d: none of it reaches the client)
    g = gateway({"server": {"default_route": "main"}, "ledger": {"enabled": False},
                 "breaker": {"failures": 1000, "cooldown": 0.1},
                 "providers": {"p": {"kind": "openai", "base_url": url, "locality": "local"}},
                 "models": {"local": {"provider": "p", "model": "m"}},
                 "routes": {"main": {"policy": "fallback", "targets": ["local"], "retries": 0}}})
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0, timeout=30))
    with pytest.raises(openai.APIStatusError) as e:
        r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}], stream=stream)
        if stream:
            list(r)
    assert e.value.status_code == 502
    assert SAYS.get(shape, "malformed HTTP response") in e.value.message, e.value.message
    said = e.value.response.text
    assert "s3cret" not in said and "127.0.0.1" not in said and url.rsplit(":", 1)[1] not in said, said


@pytest.mark.parametrize("piece", [b"HTTP/1.1 100 Continue\r\n\r\n", b"x-more: 1\r\n"],
                         ids=["100 Continue every 0.2 s", "a header line every 0.2 s"])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_stream_whose_answer_head_never_ends_times_out(gateway, raw_upstream, piece, api):
    """`sock_read` restarts on every byte and `stream_total` starts with the body: an upstream sending `100
    Continue` (or one more header line) every 0.2 s held a streamed call for ever (the SDK gave up at its own
    timeout, 30 s here; with header lines aiohttp's 128-header limit ended it, after 128 x the interval). Now the
    head must be whole within `timeouts.read` (with the pool's wait): a 504 in the client's schema."""
    answer, url = raw_upstream
    answer["drip"] = piece
    if not piece.startswith(b"HTTP"):
        answer["first"] = b"HTTP/1.1 200 OK\r\n"
    g = gateway({"server": {"default_route": "main"}, "ledger": {"enabled": False},
                 "breaker": {"failures": 1000, "cooldown": 0.1},
                 "providers": {"p": {"kind": "openai", "base_url": url, "locality": "local",
                                     "timeouts": {"read": 1, "pool": 1, "connect": 1}}},
                 "models": {"local": {"provider": "p", "model": "m"}},
                 "routes": {"main": {"policy": "fallback", "targets": ["local"], "retries": 0}}})
    msgs = [{"role": "user", "content": "hi"}]
    if api == "openai":
        client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0, timeout=30))
        with pytest.raises(openai.APIStatusError) as e:
            list(client.chat.completions.create(model="main", messages=msgs, stream=True))
        assert e.value.status_code == 504 and e.value.body["type"] == "server_error", e.value.body
    else:
        ac = g.keep(anthropic.Anthropic(base_url=g.url, api_key="x", max_retries=0, timeout=30))
        with pytest.raises(anthropic.APIStatusError) as ea:
            list(ac.messages.create(model="main", max_tokens=10, messages=msgs, stream=True))
        assert ea.value.status_code == 504 and ea.value.body["error"]["type"] == "timeout_error", ea.value.body
