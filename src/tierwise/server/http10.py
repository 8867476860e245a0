"""Responses to HTTP/1.0 clients without a length: delimited by closing the connection.

uvicorn's httptools protocol frames every response that names no length as `transfer-encoding: chunked`, which
RFC 9112 (6.1) forbids toward a 1.0 client: it does not know chunked and reads the chunk sizes as part of the
answer (an SSE stream became `1a\\r\\ndata: …`). A 1.0 connection is never kept alive (uvicorn closes it after
the response), so the body is written as it comes and its end is the close, as HTTP/1.0 defines.
"""

from __future__ import annotations

from typing import Any


def close_delimited(cycle: Any) -> None:
    """Make an HTTP/1.0 request's cycle send a length-less response unframed (uvicorn's cycle, before its
    `run_asgi` starts: the ASGI app is handed `cycle.send`)."""
    send = cycle.send
    unframed = False

    async def send_unframed(message: Any) -> None:
        nonlocal unframed
        if message["type"] == "http.response.start":
            names = {bytes(n).lower() for n, _ in message.get("headers", ())}
            if (b"content-length" not in names and b"transfer-encoding" not in names
                    and cycle.scope["method"] != "HEAD" and message["status"] not in (204, 304)):
                unframed = True
                cycle.keep_alive = False
                cycle.chunked_encoding = False  # uvicorn adds chunked only while this is None
        elif unframed and message["type"] == "http.response.body":
            # uvicorn counts the body down from a length; each piece is its own length, so it never runs over
            cycle.expected_content_length = len(message.get("body", b""))
        await send(message)

    cycle.send = send_unframed
