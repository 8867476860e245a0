"""An upstream whose answer is not valid HTTP/1.1 framing (wire5): a 502 (or the stream's error event) in the
client's schema that says so, never a 500 or a hang
(it said `provider 'p': ClientResponseError` / `ServerDisconnectedError`). A raw asyncio server plays the upstream."""

from __future__ import annotations

import asyncio
import json
import threading

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
    client = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0, timeout=30)
    with pytest.raises(openai.APIStatusError) as e:
        r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}], stream=stream)
        if stream:
            list(r)
    assert e.value.status_code == 502
    assert SAYS.get(shape, "malformed HTTP response") in e.value.message, e.value.message
    said = e.value.response.text
    assert "s3cret" not in said and "127.0.0.1" not in said and url.rsplit(":", 1)[1] not in said, said
