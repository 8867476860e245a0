"""The MCP server's bound on sessions open at once (mcp_http.MAX_SESSIONS) when every session listens on its GET
event stream (wire12; review34c's "left"): review34c's fair eviction closed only idle sessions, so four addresses
holding 25 sessions each with its stream open left every other client a 503 for as long as they listened. Now, with
no idle session to close, a listening-only one (a GET stream open, no call running) of the client holding the most
(more than the opener) is ended for the newcomer; its client's next request gets 404, as after any ended session,
and the MCP client opens a new one. A session running a call is still never closed. The mcp package's server over
real HTTP (uvicorn, in this process), clients on distinct loopback addresses."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.mcp.http_server import INIT
from tests.mcp.test_mcp_http_sessions import AUTH, call_slow, gated_tool, open_session, ping, serving
from tests.mcp.test_mcp_sessions_fair_cap import at

LISTEN = {**AUTH, "accept": "text/event-stream", "mcp-protocol-version": "2025-06-18"}


async def listen(c: aiohttp.ClientSession, url: str, sid: str) -> aiohttp.ClientResponse:
    r = await c.get(url, headers={**LISTEN, "mcp-session-id": sid})
    assert r.status == 200, r.status
    return r


async def ended(r: aiohttp.ClientResponse) -> bool:
    """Whether the server ended event stream `r` (read to its end; a live one never ends)."""
    try:
        while await r.content.readany():
            pass
    except aiohttp.ClientError:
        pass
    return True


def test_clients_listening_on_every_session_do_not_lock_out_another(monkeypatch):
    import tierwise.mcp_http as mcp_http

    monkeypatch.setattr(mcp_http, "MAX_SESSIONS", 4)

    async def run() -> dict[str, object]:
        async with serving() as url, at(2) as a, at(3) as b, at(4) as c:
            held = {}
            for name, client in (("a", a), ("a", a), ("a", a), ("b", b)):
                sid = (await open_session(client, url))[1] or ""
                held.setdefault(name, []).append((sid, await listen(client, url, sid)))
            newcomer, _ = await open_session(c, url)  # before: 503, every session listening
            # the least recently used of a's (the client holding the most): its stream ended, its id unknown
            first_ended = newcomer == 202 and await asyncio.wait_for(ended(held["a"][0][1]), 30)
            pings = [await ping(a, url, s) for s, _ in held["a"]] + [await ping(b, url, held["b"][0][0])]
            for streams in held.values():
                for _, r in streams:
                    r.close()
            return {"newcomer": newcomer, "first_ended": first_ended, "pings": pings}

    got = asyncio.run(run())
    assert got == {"newcomer": 202, "first_ended": True, "pings": [404, 200, 200, 200]}, got


def test_a_session_running_a_call_or_a_client_holding_no_more_is_never_closed_for_it(monkeypatch):
    import tierwise.mcp_http as mcp_http

    monkeypatch.setattr(mcp_http, "MAX_SESSIONS", 3)
    gate, started, slow = gated_tool()

    async def run() -> dict[str, object]:
        async with serving(slow) as url, at(2) as a, at(3) as b, at(4) as c, at(5) as d:
            a1, a2 = [(await open_session(a, url))[1] or "" for _ in range(2)]
            streams = [await listen(a, url, a1)]
            running = asyncio.ensure_future(call_slow(a, url, a2))  # a's other session runs a call (and listens)
            while started[0] < 1:
                await asyncio.sleep(0.01)
            streams.append(await listen(a, url, a2))
            b1 = (await open_session(b, url))[1] or ""
            streams.append(await listen(b, url, b1))
            third, _ = await open_session(c, url)  # a holds 2 > 0: its listening-only a1 is ended
            # now a 1 (running), b 1 (listening), c 1: none holds more than d will, nothing running is cut
            async with d.post(url, json=INIT, headers=AUTH) as r:
                refused = (r.status, r.headers.get("retry-after"), json.loads(await r.read())["error"]["message"])
            pings = [await ping(a, url, a1), await ping(b, url, b1)]
            gate.set()
            call = await running
            for s in streams:
                s.close()
            return {"third": third, "refused": refused, "pings": pings, "call": call}

    got = asyncio.run(run())
    assert got["third"] == 202 and got["pings"] == [404, 200] and got["call"] == 200, got
    status, retry, message = got["refused"]  # type: ignore[misc]
    assert (status, retry) == (503, "1") and "MAX_SESSIONS" in message, got
