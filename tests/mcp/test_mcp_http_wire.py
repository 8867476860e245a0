"""`tierwise mcp --transport http` on the wire (wire11), as it is served (the gateway's protocol, no trusted proxies).
- A GET event stream with `Last-Event-ID` (a client resuming after a dropped connection, as the MCP client does): the
  mcp package resumes only from an event store, this server keeps none, and its handler returned without an answer:
  uvicorn's bare `500 Internal Server Error` (text, no JSON-RPC). Now the header is dropped: a fresh stream.
- An absolute-form target (`POST http://evil.example/mcp`): the package's DNS-rebinding guard read the `Host` line, the
  target named another host (server/request_target.py: the target's authority is the Host; a differing line 400)."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp

from tests.harness import exchange
from tests.mcp.http_server import INIT, TOKEN
from tests.mcp.test_mcp_http_sessions import AUTH, open_session, serving

OPEN = json.dumps(INIT).encode()


def test_a_get_stream_resuming_from_an_event_id_is_answered_with_a_stream():
    async def run() -> tuple[int, str]:
        async with serving(as_served=True) as url, aiohttp.ClientSession() as c:
            _, sid = await open_session(c, url)
            async with c.get(url, headers={**AUTH, "accept": "text/event-stream", "mcp-session-id": sid,
                                           "mcp-protocol-version": "2025-06-18", "last-event-id": "42"}) as r:
                return r.status, r.headers.get("content-type", "")

    status, ctype = asyncio.run(run())
    assert status == 200 and ctype.startswith("text/event-stream"), (status, ctype)  # before: 500, text/plain


def test_an_absolute_target_naming_another_host_is_refused():
    def post(port: int, line: bytes, host: bytes) -> bytes:
        return exchange(port, line + b"\r\n" + host + b"authorization: Bearer %s\r\ncontent-type: application/json\r\n"
                        b"accept: application/json, text/event-stream\r\ncontent-length: %d\r\nconnection: close\r\n"
                        b"\r\n%s" % (TOKEN.encode(), len(OPEN), OPEN), timeout=5)

    async def run() -> list[bytes]:
        async with serving(as_served=True) as url:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            loop = asyncio.get_running_loop()
            sent = [(b"POST http://evil.example/mcp HTTP/1.1", b"host: 127.0.0.1:%d\r\n" % port),
                    (b"POST http://evil.example:%d/mcp HTTP/1.0" % port, b""),
                    (b"POST http://127.0.0.1:%d/mcp HTTP/1.1" % port, b"host: 127.0.0.1:%d\r\n" % port)]
            return [await loop.run_in_executor(None, post, port, line, host) for line, host in sent]

    got = [re.findall(rb"HTTP/1\.[01] (\d{3}) ", g) for g in asyncio.run(run())]
    assert got[0] == [b"400"] and got[1] == [b"421"], got  # before: served (the Host line checked, or none)
    assert got[2] == [b"200"], got  # this host's: a session opens


def test_ambiguous_or_malformed_host_lines_are_refused_400():
    """The mcp package's rebinding guard reads the first Host (and Origin) line and matches `127.0.0.1:*` against any
    text after the colon: two Host lines with loopback's first, `Host: 127.0.0.1:80@evil.example` and two Origins
    opened a session (200); no Host was the package's 421 in plain text. Now 400 as a JSON-RPC error, as the gateway's
    guard answers them."""
    def post(port: int, lines: bytes) -> bytes:
        return exchange(port, b"POST /mcp HTTP/1.1\r\n" + lines + b"authorization: Bearer %s\r\ncontent-type: "
                        b"application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: %d\r\n"
                        b"connection: close\r\n\r\n%s" % (TOKEN.encode(), len(OPEN), OPEN), timeout=5)

    async def run() -> list[bytes]:
        async with serving(as_served=True) as url:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            lo = b"host: 127.0.0.1:%d\r\n" % port
            sent = [lo + b"host: evil.example\r\n", b"host: 127.0.0.1:80@evil.example\r\n", b"",
                    lo + b"origin: http://127.0.0.1:%d\r\norigin: http://evil.example\r\n" % port, lo]
            loop = asyncio.get_running_loop()
            return [await loop.run_in_executor(None, post, port, lines) for lines in sent]

    got = asyncio.run(run())
    for g in got[:4]:
        assert g.startswith(b"HTTP/1.1 400") and b'"jsonrpc"' in g and b"Host" in g, g[:300]
    assert got[4].startswith(b"HTTP/1.1 200"), got[4][:300]  # one Host line of this host: a session opens
