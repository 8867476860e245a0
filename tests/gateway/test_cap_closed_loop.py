"""A client at exactly its per-client cap, in a closed loop (each request sent the moment the last byte of the
previous answer arrives), is never refused: the counts are given back as the answer's last bytes leave
(App.give_back_caps), not when the request's task ends.

Before, a streamed answer's task ended event-loop turns after its last byte had gone: at cap 50, 50 aiohttp
workers in a closed loop drew 114 429s in 2,013 streams (bench/RESULTS.md, session 30, wire7), and the
side-by-side bench's 50 streams at cap 64 drew 26. The client is the official OpenAI SDK in a process of its own
(a client in the gateway's process shares its interpreter lock and never wins that race), and a raw pipelined
connection, on which the next request's task starts the moment the previous answer ends (deterministic).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket

import aiohttp

from tests.doubles.script import Reply
from tests.harness import ServeProcess, wait_for


def _gw(gateway, openai_up, cap: int):
    return gateway({"server": {"default_route": "local",
                               "limits": {"max_requests_per_client": cap, "max_streams_per_client": cap}},
                    "ledger": {"enabled": False},
                    "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}},
                    "models": {"local": {"provider": "loc", "model": "m"}}})


def _held(g) -> tuple[dict[str, int], dict[str, int]]:
    return g.on_loop(lambda: (dict(g.app.calls.open), dict(g.app.streams.open)))


async def _closed_loop(url: str, workers: int, rounds: int) -> tuple[int, list[str]]:
    """`workers` aiohttp clients of one address, each streaming `rounds` answers one after another; each next
    request is sent as soon as the previous answer's last byte is read. Returns (served, refusals)."""
    body = {"model": "local", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    served, refused = 0, []

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal served
        for _ in range(rounds):
            async with session.post(url + "/v1/chat/completions", json=body) as r:
                text = await r.text()
                if r.status == 200:
                    served += 1
                else:
                    refused.append(text)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(loop(session) for _ in range(workers)))
    return served, refused


def test_a_client_at_its_cap_in_a_closed_loop_is_never_refused(openai_up, tmp_path):
    """Cap 16, 16 streams at once from one address, each followed at once by the next: 0 refused (before: 429s,
    2 of 640 in each of two runs). The gateway is a `tierwise serve` process (uvloop, as in production: the in-process test
    server's asyncio loop happens to run the ended stream's task before it reads the next request); the client is
    aiohttp, whose next request follows the last byte within the gateway's window (the OpenAI SDK's own work
    between two requests outlasted it here)."""
    cap, rounds = 16, 60
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(json.dumps({
        "server": {"default_route": "local", "limits": {"max_requests_per_client": cap, "max_streams_per_client": cap}},
        "ledger": {"enabled": False},
        "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}},
        "models": {"local": {"provider": "loc", "model": "m"}}}))
    openai_up.default = Reply(text="one two three four five six")
    g = ServeProcess(cfg, "closed-loop", tmp_path)
    try:
        served, refused = asyncio.run(_closed_loop(g.url, cap, rounds))
    finally:
        g.stop()
    assert (served, len(refused)) == (cap * rounds, 0), refused[:1]


def _post(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(data), data))


def test_a_pipelined_request_after_an_answer_at_the_cap_is_served(gateway, openai_up):
    """Cap 1: three streamed (and then three plain) requests pipelined on one connection run one after another,
    each when the previous answer has ended: every one is served (before: the second stream got 429)."""
    g = _gw(gateway, openai_up, 1)
    openai_up.default = Reply(text="one two three")
    for stream in (True, False):
        body = {"model": "local", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        with socket.create_connection(("127.0.0.1", g.port), timeout=30) as s:
            s.sendall(_post(body) * 2 + _post(body).replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nconnection: close\r\n"))
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", got)
        assert statuses == [b"200"] * 3, got[:3000]
    assert wait_for(lambda: _held(g) == ({}, {}))
