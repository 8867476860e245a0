"""Requests asking to switch protocols (`Upgrade: websocket`, `h2c`, with `Connection: upgrade`), for
`limits.GuardedHttpToolsProtocol`. The gateway has no WebSocket or HTTP/2 endpoint and answers such a request as the
plain HTTP/1.1 request it also is (RFC 9110 §7.8 lets a server ignore `Upgrade`).

llhttp ends an upgrade request at its header block (a `Content-Length` body belongs to the other protocol), drops the
rest of that read, and parses a later read as HTTP again: the body of a `POST` with `Upgrade`, sent after its headers,
was served as a request of its own, past a proxy in front that forwarded it as the POST's body (smuggling: nginx's
usual websocket config sets `Upgrade` and `Connection: upgrade` on every request it passes), and a request pipelined
in the same read was never answered (wire11). Now the answer closes the connection and nothing more the client sends
on it is parsed. uvicorn's two warnings per such request (one telling the operator to install a WebSocket library:
noise any client could make, and wrong advice) are not logged.
"""

from __future__ import annotations

from typing import Any


class _NoMore:
    """The parser of a connection whose client asked to switch protocols: what it sends next is not read."""

    @staticmethod
    def feed_data(data: bytes) -> None:
        pass


_NO_MORE = _NoMore()


def end_after_answer(protocol: Any) -> None:
    """Called by the protocol when the parser stopped at an upgrade request (uvicorn's unsupported-upgrade hook)."""
    if protocol.cycle is not None:
        protocol.cycle.keep_alive = False  # (its answer says `connection: close`, then closes)
    protocol.parser = _NO_MORE
