"""MCP sessions per client over HTTP (mcp_sessions.py): the mcp package bounds the sessions open at once for the
whole server (100); one token holder that opened sessions and never ended them took all of them, and another
client's `initialize` got 503 until they idled out (30 minutes). Now one client holds at most
`mcp_http.MAX_SESSIONS_PER_CLIENT` (25): at that count its next session closes its own least recently used one
(none running a call), else 429. The mcp package's server over real HTTP (uvicorn, in this process); the second
client connects from another loopback address."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.mcp.http_server import INIT, MCP_HEADERS, TOKEN

AUTH = {**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def serving(tool: Callable[[], Awaitable[str]] | None = None, *, as_served: bool = False) -> AsyncIterator[str]:
    """The mcp package's server on a free loopback port (with `tool` as tool `slow`); `as_served`: as `tierwise mcp
    --transport http` serves it, the gateway's protocol and limits, uvicorn's proxy headers off (no
    `trusted_proxies`: the forwarding headers name nobody)."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    from tierwise.mcp_http import build_app
    from tierwise.server.limits import guarded_protocol
    from tierwise.server.limits_settings import ServerLimits

    srv = MCPServer("probe")
    if tool is not None:
        srv.tool(name="slow")(tool)
    limits = ServerLimits() if as_served else None
    served: dict[str, Any] = {"proxy_headers": False, "http": guarded_protocol(ServerLimits(), 5.0)} if as_served else {}
    app = build_app(srv, host="127.0.0.1", token=TOKEN, allowed_hosts=[], limits=limits)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **served))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        server.should_exit = True
        await task


async def open_session(c: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    async with c.post(url, json=INIT, headers=AUTH) as r:
        await r.read()
        sid = r.headers.get("mcp-session-id")
    if sid is not None:
        async with c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                          headers={**AUTH, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}) as r:
            await r.read()
    return r.status, sid


async def ping(c: aiohttp.ClientSession, url: str, sid: str) -> int:
    async with c.post(url, json={"jsonrpc": "2.0", "id": 7, "method": "ping"},
                      headers={**AUTH, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}) as r:
        await r.read()
        return r.status


def other_address() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))


def gated_tool() -> tuple[asyncio.Event, list[int], Callable[[], Awaitable[str]]]:
    """A tool for `serving` whose calls wait until the returned event is set; `started[0]` counts the calls begun."""
    gate = asyncio.Event()
    started = [0]

    async def slow() -> str:
        started[0] += 1
        await gate.wait()
        return "done"

    return gate, started, slow


def test_one_client_opening_sessions_without_end_does_not_lock_out_another():
    from tierwise.mcp_http import MAX_SESSIONS, MAX_SESSIONS_PER_CLIENT

    async def run() -> tuple[list[int], int, list[int]]:
        async with serving() as url, aiohttp.ClientSession() as a, other_address() as b:
            mine = [await open_session(a, url) for _ in range(MAX_SESSIONS + 5)]
            other, _ = await open_session(b, url)  # before: 503 "Too many open sessions"
            pings = [await ping(a, url, sid) for _, sid in mine if sid is not None]
            return [st for st, _ in mine], other, pings

    mine, other, pings = asyncio.run(run())
    assert other == 202  # (the `initialized` notification's answer: the session opened)
    assert mine == [202] * (MAX_SESSIONS + 5)  # the client itself is never locked out either
    # its least recently used sessions were closed to make room for its new ones: the newest 25 live
    assert pings == [404] * (MAX_SESSIONS + 5 - MAX_SESSIONS_PER_CLIENT) + [200] * MAX_SESSIONS_PER_CLIENT


async def call_slow(c: aiohttp.ClientSession, url: str, sid: str) -> int:
    """A call of the tool `slow` in session `sid`: its answer's status."""
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "slow", "arguments": {}}}
    async with c.post(url, json=body, headers={**AUTH, "mcp-session-id": sid,
                                                 "mcp-protocol-version": "2025-06-18"}) as r:
        await r.read()
        return r.status


def test_a_client_whose_sessions_all_run_calls_is_refused_429_and_keeps_them():
    from tierwise.mcp_http import MAX_SESSIONS_PER_CLIENT

    gate, started, slow = gated_tool()

    async def run() -> tuple[int, str, int, list[int]]:
        async with serving(slow) as url, aiohttp.ClientSession() as a, other_address() as b:
            sids = [(await open_session(a, url))[1] for _ in range(MAX_SESSIONS_PER_CLIENT)]
            calls = [asyncio.ensure_future(call_slow(a, url, sid)) for sid in sids if sid is not None]
            for _ in range(500):
                if started[0] == len(calls):
                    break
                await asyncio.sleep(0.01)
            async with a.post(url, json=INIT, headers=AUTH) as r:
                refused, message = r.status, json.loads(await r.read())["error"]["message"]
            other, _ = await open_session(b, url)
            gate.set()
            return refused, message, other, list(await asyncio.gather(*calls))

    refused, message, other, calls = asyncio.run(run())
    assert refused == 429 and "MAX_SESSIONS_PER_CLIENT" in message, message
    assert other == 202
    assert calls == [200] * MAX_SESSIONS_PER_CLIENT  # none of its running calls was cut off


def test_sessions_ended_by_their_client_are_given_back():
    from tierwise.mcp_http import MAX_SESSIONS_PER_CLIENT

    async def run() -> list[int]:
        async with serving() as url, aiohttp.ClientSession() as a:
            statuses = []
            for _ in range(MAX_SESSIONS_PER_CLIENT * 2):
                _, sid = await open_session(a, url)
                assert sid is not None
                async with a.delete(url, headers={**AUTH, "mcp-session-id": sid,
                                                  "mcp-protocol-version": "2025-06-18"}) as r:
                    statuses.append(r.status)
            return statuses

    assert asyncio.run(run()) == [200] * MAX_SESSIONS_PER_CLIENT * 2




def test_a_404_or_redirect_off_the_mcp_path_does_not_give_back_a_live_sessions_count():
    """review31e: a request naming one of the client's own sessions on another path (404 from the router) or on
    `/mcp/` (a 307 redirect, a DELETE's "below 400") was read as the session's end: its count was given back while
    the session lived on, so one client opened every one of the server's sessions again (another's 503)."""
    from tierwise.mcp_http import MAX_SESSIONS

    async def run() -> tuple[list[int], int]:
        async with serving() as url, aiohttp.ClientSession() as a, other_address() as b:
            mine = []
            for i in range(MAX_SESSIONS + 5):
                status, sid = await open_session(a, url)
                mine.append(status)
                if sid is not None:  # make the gateway forget it: a 404 off the path, or a DELETE redirected
                    h = {**AUTH, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
                    if i % 2:
                        async with a.post(url + "-nope", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                          headers=h) as r:
                            await r.read()
                    else:
                        async with a.delete(url + "/", headers=h, allow_redirects=False) as r:
                            await r.read()
            other, _ = await open_session(b, url)
            return mine, other

    mine, other = asyncio.run(run())
    assert other == 202, (other, mine[-10:])


def test_x_forwarded_for_from_a_loopback_client_names_no_other_client(server):
    """review31e: `tierwise mcp --transport http` ran uvicorn with its default proxy_headers, which trusts
    X-Forwarded-For from 127.0.0.1: every local client could say it was any address, and so open sessions under
    as many "clients" as it liked (all of the server's, another client's 503) or close another client's (its
    address named at that client's cap). The gateway's own `server.limits.trusted_proxies` decides whom to trust."""
    from tierwise.mcp_http import MAX_SESSIONS

    url = server.url

    async def run() -> tuple[list[int], int]:
        async with aiohttp.ClientSession() as a, other_address() as b:
            mine = []
            for i in range(MAX_SESSIONS + 5):
                async with a.post(url, json=INIT, headers={**AUTH, "x-forwarded-for": f"10.7.{i // 250}.{i % 250}"}) as r:
                    await r.read()
                    mine.append(r.status)
            other, _ = await open_session(b, url)
            return mine, other

    mine, other = asyncio.run(run())
    assert other == 202, (other, mine[-10:])
