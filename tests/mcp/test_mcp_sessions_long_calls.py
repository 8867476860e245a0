"""wire14: sessions whose calls never end (a tool waiting on a model that trickles, a hostile token holder's own long
calls) were never closed: one address running calls in 25 sessions kept them and their memory, and at the server's
bound (mcp_http.MAX_SESSIONS) every other client got 503 for as long as those calls ran. Now a session whose calls
have run `mcp_http.MAX_CALL_S` may be closed for a new one, last (after idle and listening ones), of the client
holding the most; its call is cancelled with it and its client's answer ends. A call younger than that is never cut.
The mcp package's server over real HTTP (uvicorn, in this process), clients on distinct loopback addresses."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.mcp.http_server import INIT
from tests.mcp.test_mcp_http_sessions import AUTH, gated_tool, open_session, ping, serving
from tests.mcp.test_mcp_sessions_fair_cap import at


async def call(c: aiohttp.ClientSession, url: str, sid: str) -> str:
    """A call of the tool `slow` in session `sid`: how its answer went (`done`, or `cut` when it ended without one)."""
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "slow", "arguments": {}}}
    try:
        async with c.post(url, json=body, headers={**AUTH, "mcp-session-id": sid,
                                                    "mcp-protocol-version": "2025-06-18"}) as r:
            text = (await r.read()).decode()
    except aiohttp.ClientError:
        return "cut"
    return "done" if r.status == 200 and '"done"' in text else f"cut {r.status}"


async def _running(started: list[int], n: int) -> None:
    while started[0] < n:
        await asyncio.sleep(0.01)


def test_sessions_running_endless_calls_do_not_lock_out_a_newcomer(monkeypatch):
    import tierwise.mcp_http as mcp_http

    monkeypatch.setattr(mcp_http, "MAX_SESSIONS", 3)
    monkeypatch.setattr(mcp_http, "MAX_CALL_S", 0.5)
    gate, started, slow = gated_tool()

    async def run() -> dict[str, object]:
        async with serving(slow) as url, at(2) as a, at(3) as b, at(4) as c:
            a1, a2 = [(await open_session(a, url))[1] or "" for _ in range(2)]
            b1 = (await open_session(b, url))[1] or ""
            first = asyncio.ensure_future(call(a, url, a1))
            await _running(started, 1)
            others = [asyncio.ensure_future(call(a, url, a2)), asyncio.ensure_future(call(b, url, b1))]
            await _running(started, 3)
            await asyncio.sleep(0.6)  # (every call past MAX_CALL_S)
            newcomer, _ = await open_session(c, url)  # before: 503 for as long as the calls ran
            # a holds the most: its longest-running call is cut
            cut = await asyncio.wait_for(first, 30) if newcomer == 202 else "running"
            pings = [await ping(a, url, a1), await ping(a, url, a2), await ping(b, url, b1)]
            gate.set()
            if not first.done():
                await first
            return {"newcomer": newcomer, "cut": cut, "pings": pings, "others": list(await asyncio.gather(*others))}

    got = asyncio.run(run())
    assert got["newcomer"] == 202 and got["cut"].startswith("cut"), got  # type: ignore[union-attr]
    assert got["pings"] == [404, 200, 200] and got["others"] == ["done", "done"], got


def test_a_call_younger_than_the_bound_is_never_cut(monkeypatch):
    import tierwise.mcp_http as mcp_http

    monkeypatch.setattr(mcp_http, "MAX_SESSIONS", 3)
    gate, started, slow = gated_tool()  # (MAX_CALL_S as shipped: 15 minutes)

    async def run() -> dict[str, object]:
        async with serving(slow) as url, at(2) as a, at(3) as b, at(4) as c:
            sids = [(await open_session(a, url))[1] or "" for _ in range(2)] + [(await open_session(b, url))[1] or ""]
            calls = [asyncio.ensure_future(call(x, url, s)) for x, s in zip((a, a, b), sids, strict=True)]
            await _running(started, 3)
            async with c.post(url, json=INIT, headers=AUTH) as r:
                refused = (r.status, json.loads(await r.read())["error"]["message"])
            gate.set()
            return {"refused": refused, "calls": list(await asyncio.gather(*calls))}

    got = asyncio.run(run())
    assert got["refused"][0] == 503 and "MAX_SESSIONS" in got["refused"][1], got  # type: ignore[index]
    assert got["calls"] == ["done"] * 3, got



def test_a_client_whose_sessions_all_run_endless_calls_opens_one_more_in_place_of_its_oldest(monkeypatch):
    import tierwise.mcp_http as mcp_http
    from tierwise.mcp_http import MAX_SESSIONS_PER_CLIENT

    monkeypatch.setattr(mcp_http, "MAX_CALL_S", 0.5)
    gate, started, slow = gated_tool()

    async def run() -> dict[str, object]:
        async with serving(slow) as url, at(2) as a:
            sids = [(await open_session(a, url))[1] or "" for _ in range(MAX_SESSIONS_PER_CLIENT)]
            calls = []
            for n, sid in enumerate(sids, 1):  # (one after another: the first is the oldest)
                calls.append(asyncio.ensure_future(call(a, url, sid)))
                await _running(started, n)
            await asyncio.sleep(0.6)  # (every call past MAX_CALL_S)
            again, _ = await open_session(a, url)  # before: 429 for as long as its calls ran
            oldest = await asyncio.wait_for(calls[0], 30) if again == 202 else "running"
            gate.set()
            return {"again": again, "oldest": oldest, "rest": list(await asyncio.gather(*calls[1:]))}

    got = asyncio.run(run())
    assert got["again"] == 202 and str(got["oldest"]).startswith("cut"), got
    assert got["rest"] == ["done"] * (MAX_SESSIONS_PER_CLIENT - 1), got
