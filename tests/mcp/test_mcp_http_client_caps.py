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
                 "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + TOKEN.encode())]}
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


def test_a_post_whose_client_left_cancels_its_tool_call():
    """Cap 1; six tool calls of one session, each POST left by its client at the answer's first byte. Before, each
    call ran on in the session (the mcp package does not cancel it) after the POST's count was given back: six
    calls at once under a cap of one. Now the gateway cancels a left call in its session (`notifications/cancelled`)
    while the POST still counts: never more than one runs. The mcp package's server over real HTTP (uvicorn)."""
    import json
    import socket as socket_mod

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    from tierwise.config import ServerLimits
    from tierwise.mcp_http import build_app

    running = [0, 0]  # now, most at once
    srv = MCPServer("probe")

    @srv.tool()
    async def slow() -> str:
        running[0] += 1
        running[1] = max(running)
        try:
            await asyncio.sleep(30)
        finally:
            running[0] -= 1
        return "done"

    async def run() -> list[str]:
        app = build_app(srv, host="127.0.0.1", token=TOKEN, allowed_hosts=[],
                        limits=ServerLimits(max_requests_per_client=1))
        sock = socket_mod.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        statuses: list[str] = []
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{port}/mcp"
            h = {**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"}
            async with aiohttp.ClientSession() as c:
                init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}
                async with c.post(url, json=init, headers=h) as r:
                    await r.read()
                    h.update({"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"})
                async with c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h) as r:
                    await r.read()
            head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
            for i in range(6):
                body = json.dumps({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                                   "params": {"name": "slow", "arguments": {}}}).encode()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{head}content-length: {len(body)}\r\n"
                             f"\r\n".encode() + body)
                statuses.append((await asyncio.wait_for(reader.readline(), 30)).decode().strip())
                for _ in range(200):  # the call has started
                    if running[0]:
                        break
                    await asyncio.sleep(0.01)
                writer.close()  # the client leaves
                for _ in range(200):  # (cancelled: the next POST may come; before, it came after 2 s all the same)
                    if not running[0]:
                        break
                    await asyncio.sleep(0.01)
        finally:
            server.should_exit = True
            await serving
        return statuses

    statuses = asyncio.run(run())
    assert statuses == ["HTTP/1.1 200 OK"] * 6
    assert running[1] == 1  # before: 6
