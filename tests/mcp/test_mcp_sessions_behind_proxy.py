"""MCP over HTTP behind a reverse proxy not in `server.limits.trusted_proxies`: every client reaches the server from
the proxy's address, so they share one client's `MAX_SESSIONS_PER_CLIENT` sessions, and a client at that count closed
the least recently used session of that address, another client's (wire10). Before: one agent restarting in a loop
behind the proxy closed every other agent's session, a live one holding its event stream included (its next call a
404). Now a session with a request in flight (its GET event stream, a call) is never closed for another, and of the
idle ones the opener's own go first (the same `User-Agent` and forwarded-for headers: hints only, they choose among
what may be closed and raise no count); the operator is told once that forwarding headers come from a peer not
trusted. The mcp package's server over real HTTP; all clients on one loopback address, as behind a proxy."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from tests.mcp.http_server import INIT
from tests.mcp.test_mcp_http_sessions import AUTH, ping, serving


async def _open(c: aiohttp.ClientSession, url: str, hint: dict[str, str]) -> str:
    async with c.post(url, json=INIT, headers={**AUTH, **hint}) as r:
        await r.read()
        sid = r.headers["mcp-session-id"]
    async with c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                      headers={**AUTH, **hint, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}) as r:
        await r.read()
    return sid


A = {"user-agent": "agent-a/1", "x-forwarded-for": "198.51.100.7"}
B = {"user-agent": "agent-b/1", "x-forwarded-for": "203.0.113.9"}


def test_a_session_holding_its_event_stream_is_not_closed_for_another_clients_new_ones():
    from tierwise.mcp_http import MAX_SESSIONS_PER_CLIENT

    async def run() -> tuple[int, list[int]]:
        async with serving(as_served=True) as url, aiohttp.ClientSession() as a, aiohttp.ClientSession() as b:
            live = await _open(a, url, A)
            listening = await a.get(url, headers={**AUTH, **A, "accept": "text/event-stream", "mcp-session-id": live,
                                                   "mcp-protocol-version": "2025-06-18"})
            assert listening.status == 200
            # another client behind the proxy, with the same headers as A's (the hints cannot save a live one)
            mine = [await _open(b, url, A) for _ in range(MAX_SESSIONS_PER_CLIENT + 5)]
            alive = await ping(a, url, live)
            listening.close()
            return alive, [await ping(b, url, s) for s in mine]

    alive, theirs = asyncio.run(run())
    assert alive == 200  # before: 404, closed as the address's least recently used session
    assert theirs.count(200) == MAX_SESSIONS_PER_CLIENT - 1 and theirs[-1] == 200


def test_an_idle_session_of_another_user_agent_outlives_a_looping_clients_sessions(caplog):
    from tierwise.mcp_http import MAX_SESSIONS_PER_CLIENT

    async def run() -> tuple[int, list[int]]:
        async with serving(as_served=True) as url, aiohttp.ClientSession() as a, aiohttp.ClientSession() as b:
            idle = await _open(a, url, A)
            mine = [await _open(b, url, B) for _ in range(MAX_SESSIONS_PER_CLIENT * 2)]
            return await ping(a, url, idle), [await ping(b, url, s) for s in mine]

    with caplog.at_level(logging.WARNING, logger="tierwise.mcp"):
        alive, theirs = asyncio.run(run())
    assert alive == 200  # before: 404
    assert theirs == [404] * (MAX_SESSIONS_PER_CLIENT + 1) + [200] * (MAX_SESSIONS_PER_CLIENT - 1)
    warned = [r.getMessage() for r in caplog.records if "trusted_proxies" in r.getMessage()]
    assert len(warned) == 1 and "x-forwarded-for" in warned[0], warned
