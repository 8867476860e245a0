"""The MCP HTTP server's per-client bounds (mcp_http.BearerAuth): at most `server.limits.max_requests_per_client`
POSTs of one client run at once, and their bodies count in `server.limits.max_body_bytes_in_flight`.

Before, only the connection cap (4,096) bounded a token holder: each connection held a tool call (an ensemble run)
and a body of up to `max_body_bytes` (32 MiB). The real `tierwise mcp --transport http`; requests held open by
bodies that have not finished arriving."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.mcp.http_server import MCP_HEADERS, TOKEN, raw_post, start


def _held_post(port: int) -> socket.socket:
    """A POST whose body stops after 10 of its 200 bytes: its request runs (reading the body) until closed."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nauthorization: Bearer %s\r\n"
              b"content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
              b"content-length: 200\r\n\r\n{\"jsonrpc\"" % (port, TOKEN.encode()))
    return s


def test_one_client_runs_at_most_its_cap_of_mcp_requests(project: Path):
    cfg: dict[str, Any] = yaml.safe_load((project / "tierwise.yaml").read_text())
    cfg.setdefault("server", {})["limits"] = {"max_requests_per_client": 2}
    (project / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    server = start(project)
    held: list[socket.socket] = []
    try:
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert asyncio.run(raw_post(server.url, auth)).status == 200
        held = [_held_post(server.port) for _ in range(2)]

        async def third() -> tuple[int, str]:
            # A body the mcp app refuses (400) opens no session; polled until both held requests run.
            async with aiohttp.ClientSession() as c:
                for _ in range(60):
                    async with c.post(server.url, data=b"[]", headers={**MCP_HEADERS, **auth}) as r:
                        await r.read()
                        if r.status == 429:
                            return r.status, r.headers.get("retry-after", "")
                    await asyncio.sleep(0.05)
            return r.status, ""  # before: 400 every time, however many requests the client ran

        assert asyncio.run(third()) == (429, "1")
        for s in held:
            s.close()
        held = []

        async def again() -> int:
            for _ in range(100):  # until the closed requests have ended
                r = await raw_post(server.url, auth)
                if r.status == 200:
                    return 200
                await asyncio.sleep(0.05)
            return r.status

        assert asyncio.run(again()) == 200
    finally:
        for s in held:
            s.close()
        server.proc.kill()
        server.proc.wait()


def test_mcp_bodies_count_in_the_bytes_in_flight():
    """Two bodies of 800 bytes at once under `max_body_bytes_in_flight: 1024`: the second is refused 503 +
    Retry-After while the first is held; once it has ended the bytes are given back (the middleware driven
    directly: a budget in bytes is read off at once here)."""
    from tierwise.config import ServerLimits
    from tierwise.mcp_http import BearerAuth

    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(mw: BearerAuth, client: str) -> int:
        pending = [{"type": "http.request", "body": b"x" * 800, "more_body": False}]
        got: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(m: dict[str, Any]) -> None:
            got.append(m)

        scope = {"type": "http", "method": "POST", "client": (client, 1),
                 "headers": [(b"authorization", b"Bearer " + TOKEN.encode())]}
        await mw(scope, receive, send)
        return int(got[0]["status"])

    async def run() -> list[int]:
        mw = BearerAuth(app, TOKEN, max_body=1000, limits=ServerLimits(max_body_bytes_in_flight=1024))
        first = asyncio.ensure_future(call(mw, "10.0.0.1"))
        await asyncio.sleep(0.01)
        try:
            second = await asyncio.wait_for(call(mw, "10.0.0.2"), 10)
        except TimeoutError:  # (before: admitted, it waited behind the gate like the first)
            second = 0
        gate.set()
        return [await first, second, await call(mw, "10.0.0.2")]

    assert asyncio.run(run()) == [200, 503, 200]
