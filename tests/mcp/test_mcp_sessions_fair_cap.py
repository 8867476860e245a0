"""The MCP server's bound on sessions open at once (mcp_http.MAX_SESSIONS, 100) made fair (review34c). One client
holds at most MAX_SESSIONS_PER_CLIENT (25), so four addresses holding 25 sessions each (on a loopback bind, any of
127/8; each with the token) left every other client the package's 503 until one idled out, 30 minutes later (wire11's
"left"). Now at the bound a new session closes an idle one of the client holding the most, when it holds more than the
opener (its least recently used); never a session with a request in flight; with none to close, 503 with Retry-After.
The mcp package's server over real HTTP (uvicorn, in this process), clients on distinct loopback addresses."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.mcp.http_server import INIT
from tests.mcp.test_mcp_http_sessions import AUTH, call_slow, gated_tool, open_session, ping, serving


def at(n: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{n}", 0)))


def test_four_clients_holding_every_session_do_not_lock_out_a_fifth():
    from tierwise.mcp_http import MAX_SESSIONS, MAX_SESSIONS_PER_CLIENT

    assert MAX_SESSIONS == 4 * MAX_SESSIONS_PER_CLIENT  # (the scenario: four clients fill the server)

    async def run() -> tuple[list[int], int, list[int]]:
        async with serving() as url, at(2) as a, at(3) as b, at(4) as c, at(5) as d, at(6) as e:
            held: list[tuple[int, str | None]] = []
            for client in (a, b, c, d):
                held += [await open_session(client, url) for _ in range(MAX_SESSIONS_PER_CLIENT)]
            fifth, _ = await open_session(e, url)  # before: 503 "Too many open sessions"
            first = held[0][1]
            assert first is not None
            return [st for st, _ in held], fifth, [await ping(a, url, first), await ping(b, url, held[25][1] or "")]

    opened, fifth, pings = asyncio.run(run())
    assert opened == [202] * 100
    assert fifth == 202
    assert pings == [404, 200]  # the least recently used idle session of a client holding the most made room


def test_the_client_holding_most_gives_way_and_a_session_with_a_call_running_is_kept(monkeypatch):
    import tierwise.mcp_http as mcp_http

    monkeypatch.setattr(mcp_http, "MAX_SESSIONS", 5)
    gate, started, slow = gated_tool()

    async def run() -> dict[str, object]:
        async with serving(slow) as url, at(2) as a, at(3) as b, at(4) as c, at(5) as d:
            bs = [(await open_session(b, url))[1] or "" for _ in range(2)]  # the oldest sessions: b's two
            as_ = [(await open_session(a, url))[1] or "" for _ in range(3)]  # a holds the most
            running = asyncio.ensure_future(call_slow(a, url, as_[0]))
            while started[0] < 1:
                await asyncio.sleep(0.01)
            third, _ = await open_session(c, url)  # closes a's least recently used idle session: as_[1]
            live = [await ping(a, url, as_[2])] + [await ping(b, url, s) for s in bs]
            closed = await ping(a, url, as_[1])
            # a 2 (one running), b 2, c 1: d's session closes one of a's or b's (2 > 1), e's the other's; then every
            # client holds one (a's running its call): f is refused, nobody's only session closed for it
            fourth, _ = await open_session(d, url)
            async with at(6) as e, at(7) as f:
                fifth, _ = await open_session(e, url)
                async with f.post(url, json=INIT, headers=AUTH) as r:
                    refused = (r.status, r.headers.get("retry-after"), json.loads(await r.read())["error"]["message"])
            gate.set()
            return {"third": third, "live": live, "closed": closed, "fourth": fourth, "fifth": fifth, "refused": refused,
                    "call": await running}

    got = asyncio.run(run())
    assert got["third"] == 202 and got["closed"] == 404 and got["live"] == [200, 200, 200], got
    assert got["fourth"] == got["fifth"] == 202, got
    status, retry, message = got["refused"]  # type: ignore[misc]
    assert (status, retry) == (503, "1") and "MAX_SESSIONS" in message, got
    assert got["call"] == 200  # the session running a call was never closed
