"""A fast stub upstream for the overhead benchmark: OpenAI- and Anthropic-compatible.

Raw asyncio + httptools, answers precomputed, so the stub is never the bottleneck.
  POST /v1/chat/completions  (OpenAI; stream or not)
  POST /v1/messages          (Anthropic; stream or not)
A stream has 50 chunks. `--latency` (seconds) is waited before the answer's first byte.
With `--split-items N`, an OpenAI request whose first user message starts with `split`
is answered (not streamed) with a JSON array of N numbers: the first stage of the ensemble
fan-out benchmark (bench/ensemble_fanout.py).

    python bench/stub_upstream.py --port 9100 --latency 0
    python bench/stub_upstream.py --port 9100 --fault-rate 0.05 --seed 1   # for bench/soak.py

With `--fault-rate F` (0 by default, and then the stub runs exactly as without it), each
request gets, with probability F, one fault chosen at random among:
  http500  HTTP 500 with an OpenAI-style error JSON body
  http429  HTTP 429 with `retry-after: 0`
  drop     the connection closed before any byte of the answer
  cut      the connection closed after part of the answer: 1-5 chunks of a stream (a
           mid-stream cut), half the body of a plain answer
  slow     the answer only starts after `--slow` seconds (1.5 by default: longer than the
           soak's read timeout of 1 s)
`GET /stats` then returns JSON: `requests`, `faults` (count by kind), and `hits`: for every
request whose body carries a tag `soak-id:N`, one letter per time the stub saw it, in order:
`o` answered normally, or the fault's letter (`5` http500, `4` http429, `d` drop, `c` cut, `s` slow).

With `--text-file PATH`, plain (not streamed) answers of both APIs carry that file's text instead
(e.g. model-written code for bench/memory_pressure.py); streams are unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re

import httptools

CHUNKS = 50
WORDS = [f"w{i} " for i in range(CHUNKS)]
TEXT = "".join(WORDS)


def _oai_body(text: str = TEXT) -> bytes:
    return json.dumps({
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 20 + CHUNKS},
    }).encode()


def _ant_body(text: str = TEXT) -> bytes:
    return json.dumps({
        "id": "msg_stub", "type": "message", "role": "assistant", "model": "stub",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": CHUNKS},
    }).encode()


def _oai_stream() -> list[bytes]:
    base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1, "model": "stub"}
    out = [b"data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                           "finish_reason": None}]}).encode() + b"\n\n"]
    for w in WORDS:
        out.append(b"data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": w},
                                                                  "finish_reason": None}]}).encode() + b"\n\n")
    out.append(b"data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
               .encode() + b"\n\n")
    out.append(b"data: " + json.dumps({**base, "choices": [], "usage": {"prompt_tokens": 20,
                                       "completion_tokens": CHUNKS, "total_tokens": 70}}).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def _ev(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _ant_stream() -> list[bytes]:
    out = [_ev("message_start", {"type": "message_start", "message": {
        "id": "msg_stub", "type": "message", "role": "assistant", "model": "stub", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        _ev("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}})]
    for w in WORDS:
        out.append(_ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": w}}))
    out += [_ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                  "stop_sequence": None}, "usage": {"output_tokens": CHUNKS}}),
            _ev("message_stop", {"type": "message_stop"})]
    return out


OAI_BODY, ANT_BODY = _oai_body(), _ant_body()
OAI_STREAM, ANT_STREAM = _oai_stream(), _ant_stream()


class Handler(asyncio.Protocol):
    latency = 0.0
    split_body: bytes | None = None  # the answer to a `split` prompt (--split-items)

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        stream = b'"stream":true' in body.replace(b" ", b"")
        anthropic = self.url.startswith(b"/v1/messages")
        split = self.split_body is not None and b'"content":"split' in body.replace(b" ", b"")
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self.respond, anthropic, stream, split)
        else:
            self.respond(anthropic, stream, split)

    def respond(self, anthropic: bool, stream: bool, split: bool = False) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if split and self.split_body is not None:
            body = self.split_body
            t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
            return
        if not stream:
            body = ANT_BODY if anthropic else OAI_BODY
            t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
            return
        t.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in ANT_STREAM if anthropic else OAI_STREAM:
            t.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        t.write(b"0\r\n\r\n")


FAULTS = {"http500": b"5", "http429": b"4", "drop": b"d", "cut": b"c", "slow": b"s"}
FAULT_KINDS = list(FAULTS)
TAG = re.compile(rb"soak-id:(\d+)")
ERR_500 = json.dumps({"error": {"message": "injected fault", "type": "server_error"}}).encode()
ERR_429 = json.dumps({"error": {"message": "injected rate limit", "type": "rate_limit_error"}}).encode()


class FaultyHandler(Handler):
    """Handler that injects random faults and counts them (used only when --fault-rate > 0)."""

    rate = 0.0
    slow = 1.5
    rng = random.Random()
    requests = 0
    faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
    hits: dict[str, bytearray] = {}

    def on_message_complete(self) -> None:
        if self.url == b"/stats":
            self.send_stats()
            return
        body = b"".join(self.body)
        stream = b'"stream":true' in body.replace(b" ", b"")
        anthropic = self.url.startswith(b"/v1/messages")
        cls = FaultyHandler
        cls.requests += 1
        fault = cls.rng.choice(FAULT_KINDS) if cls.rng.random() < cls.rate else None
        m = TAG.search(body)
        if m is not None:
            cls.hits.setdefault(m.group(1).decode(), bytearray()).extend(FAULTS[fault] if fault else b"o")
        if fault is None:
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, self.respond, anthropic, stream)
            else:
                self.respond(anthropic, stream)
            return
        cls.faults[fault] += 1
        if fault == "slow":
            asyncio.get_running_loop().call_later(self.latency + cls.slow, self.respond, anthropic, stream)
        else:
            self.fail(fault, anthropic, stream)

    def fail(self, fault: str, anthropic: bool, stream: bool) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if fault == "http500":
            t.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(ERR_500)).encode() + b"\r\n\r\n" + ERR_500)
        elif fault == "http429":
            t.write(b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 0\r\n"
                    b"content-length: " + str(len(ERR_429)).encode() + b"\r\n\r\n" + ERR_429)
        elif fault == "drop":
            t.close()
        elif stream:  # cut: a few chunks, then the connection closes without the final chunk
            t.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for part in (ANT_STREAM if anthropic else OAI_STREAM)[: self.rng.randint(1, 5)]:
                t.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            t.close()
        else:  # cut: half the promised body, then the connection closes
            body = ANT_BODY if anthropic else OAI_BODY
            t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body[: len(body) // 2])
            t.close()

    def send_stats(self) -> None:
        assert self.transport is not None
        cls = FaultyHandler
        body = json.dumps({"requests": cls.requests, "faults": cls.faults,
                           "hits": {k: v.decode() for k, v in cls.hits.items()}}).encode()
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0, help="probability that a request gets a fault")
    ap.add_argument("--seed", type=int, default=None, help="seed of the fault draws")
    ap.add_argument("--slow", type=float, default=1.5, help="seconds the `slow` fault waits")
    ap.add_argument("--split-items", type=int, default=0, help="answer `split` prompts with a JSON array of N")
    ap.add_argument("--text-file", default="", help="plain answers carry this file's text")
    a = ap.parse_args()
    if a.text_file:
        global OAI_BODY, ANT_BODY
        with open(a.text_file, encoding="utf-8") as f:
            text = f.read()
        OAI_BODY, ANT_BODY = _oai_body(text), _ant_body(text)
    Handler.latency = a.latency
    if a.split_items:
        Handler.split_body = _oai_body(json.dumps(list(range(a.split_items))))
    handler: type[Handler] = Handler
    if a.fault_rate > 0:
        FaultyHandler.rate, FaultyHandler.slow = a.fault_rate, a.slow
        FaultyHandler.rng = random.Random(a.seed)
        handler = FaultyHandler
    loop = asyncio.get_running_loop()
    server = await loop.create_server(handler, "127.0.0.1", a.port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
