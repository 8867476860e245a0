"""Requests asking to switch protocols (`Upgrade: websocket`, `h2c`, with `Connection: upgrade`), for
`limits.GuardedHttpToolsProtocol`. The gateway has no WebSocket or HTTP/2 endpoint and answers such a request as the
plain HTTP/1.1 request it also is (RFC 9110 §7.8 lets a server ignore `Upgrade`).

llhttp ends an upgrade request at its header block (httptools tells it the body belongs to the other protocol) and
parses what follows as a new HTTP message: the body of a `POST` with `Upgrade`, sent after its headers, was served as a
request of its own, past a proxy in front that forwarded it as the POST's body (smuggling: nginx's usual websocket
config sets `Upgrade` and `Connection: upgrade` on every request it passes), and a request pipelined in the same read
was never answered (wire11). Now the request's own body (its `Content-Length` or chunked framing) is read as its body,
the answer closes the connection, and nothing after that body is parsed. (review34c: the body was dropped, so every
POST with `Upgrade` was answered 400 "request body is empty": `curl --http2 -d ...`, which asks for `h2c` on every
request, and every POST through such an nginx.) uvicorn's two warnings per such request (one telling the operator to
install a WebSocket library: noise any client could make, and wrong advice) are not logged.
"""

from __future__ import annotations

from typing import Any

import httptools


class _NoMore:
    """The parser of a connection whose client asked to switch protocols: what it sends next is not read."""

    @staticmethod
    def feed_data(data: bytes) -> None:
        pass

    @staticmethod
    def should_upgrade() -> bool:
        return False


_NO_MORE = _NoMore()


class _BodyOnly:
    """The parser of an upgrade request's body (framed as its headers say): what it reads goes into the protocol's
    request; its own message's start and header callbacks are not heard, and nothing after that body is (its
    errors included: a request pipelined behind is neither served nor refused)."""

    def __init__(self, protocol: Any, framing: bytes) -> None:
        self.protocol, self.done = protocol, False
        self.parser = httptools.HttpRequestParser(self)
        self.parser.feed_data(b"POST / HTTP/1.1\r\n%s\r\n\r\n" % framing)

    def feed_data(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.done:
                raise  # (a bad chunk, trailers past the limit: uvicorn's handler, `send_400_response`)

    @staticmethod
    def should_upgrade() -> bool:
        return False

    def on_body(self, body: bytes) -> None:
        if not self.done:
            self.protocol.on_body(body)

    def on_chunk_header(self) -> None:
        if not self.done:
            self.protocol.on_chunk_header()

    def on_chunk_complete(self) -> None:
        if not self.done:
            self.protocol.on_chunk_complete()

    def on_message_complete(self) -> None:
        if not self.done:
            self.done = True
            self.protocol.on_message_complete()
            self.protocol.parser = _NO_MORE


def _framing(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The header line that frames the request's body (None: it has none)."""
    for k, v in headers:
        if k == b"transfer-encoding" and v.strip().lower().endswith(b"chunked"):
            return b"transfer-encoding: chunked"
    length = next((v.strip() for k, v in headers if k == b"content-length"), b"")
    return b"content-length: %s" % length if length.isdigit() and int(length) > 0 else None


def end_after_answer(protocol: Any) -> None:
    """Called by the protocol when the parser stopped at an upgrade request (uvicorn's unsupported-upgrade hook), in
    the read where it stopped (`protocol._data`, at `protocol._pos`: its header block's end)."""
    cycle = protocol.cycle
    protocol.parser = _NO_MORE
    if cycle is None:
        return
    cycle.keep_alive = False  # (its answer says `connection: close`, then closes)
    framing = _framing(cycle.scope["headers"])
    if framing is None or cycle.response_started:
        return
    # llhttp ended the message at its header block (the app has not run yet: this is the same read's callback)
    cycle.more_body = True
    protocol._phase, protocol._in_header = "body", False
    parser = protocol.parser = _BodyOnly(protocol, framing)
    rest = protocol._data[protocol._pos:]
    if rest:
        try:
            parser.feed_data(rest)
        except httptools.HttpParserError:  # (later reads: uvicorn's own handler, as for any request)
            protocol.send_400_response("Invalid HTTP request received.")  # (a chunk or trailer refused: 400/431)
