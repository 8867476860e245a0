"""The MCP `get_provider_status` probe (`GET base_url/models`) does not follow a redirect, like the gateway and
`tierwise doctor` (docs/security/secrets.md#redirects): before session 29 it went on to whatever host the
provider's address named. It sends no provider key, and aiohttp drops the base_url's `user:password@` on a
cross-origin hop, so nothing secret went; one rule for every caller is what this keeps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tierwise.mcp_server import _probe


def _server(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    s = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    return s, t


@pytest.fixture
def pair() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    target, tt = _server(Target)
    where = f"http://127.0.0.1:{target.server_address[1]}/elsewhere"

    class Redirector(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(307)
            self.send_header("location", where)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    red, rt = _server(Redirector)
    try:
        yield f"http://probe-user:Pr0bePassw0rd9@127.0.0.1:{red.server_address[1]}/v1", seen
    finally:
        for s in (red, target):
            s.shutdown()
            s.server_close()


def test_the_provider_probe_does_not_follow_a_redirect(pair: tuple[str, list[dict[str, str]]]) -> None:
    base_url, seen = pair
    up, detail = asyncio.run(_probe(base_url))
    assert up and detail == "HTTP 307"  # an answer: the server is up
    assert seen == [], seen  # nothing went to the host the redirect named
