"""review35b: wire12's fair eviction at the MCP server's bound (mcp_http.MAX_SESSIONS) ends a listening session of
the client holding the most for a newcomer holding fewer. One address could use it over and over: open (ending one of
a well-behaved client's live sessions), DELETE its own, open again when that client has reconnected, and so on, so
that client's sessions were ended one after another while the churner never held more than one. Now the sessions a
client got by ending others' within the idle window count towards what it holds, for the rule only: the second
round is refused 503 and the other client keeps its sessions. The mcp package's server over real HTTP (uvicorn, in
this process), clients on distinct loopback addresses."""

from __future__ import annotations

import asyncio

from tests.mcp.test_mcp_http_sessions import AUTH, open_session, ping, serving
from tests.mcp.test_mcp_sessions_fair_cap import at
from tests.mcp.test_mcp_sessions_live_streams_fair import listen

END = {**AUTH, "mcp-protocol-version": "2025-06-18"}


def test_one_address_cannot_end_another_clients_sessions_round_after_round(monkeypatch):
    import tierwise.mcp_http as mcp_http

    monkeypatch.setattr(mcp_http, "MAX_SESSIONS", 3)

    async def run() -> dict[str, object]:
        async with serving() as url, at(2) as v, at(3) as b, at(4) as churner:
            streams = []
            for client in (v, v, b):
                sid = (await open_session(client, url))[1] or ""
                streams.append((client, sid, await listen(client, url, sid)))
            first, mine = await open_session(churner, url)  # fair: v holds 2, the churner 1
            async with churner.delete(url, headers={**END, "mcp-session-id": mine or ""}) as r:
                deleted = r.status
            back, v_sid = await open_session(v, url)  # v's client reconnects in the room the churner left
            streams.append((v, v_sid or "", await listen(v, url, v_sid or "")))
            second, _ = await open_session(churner, url)  # before: 202, another of v's sessions ended
            pings = [await ping(c, url, s) for c, s, _ in streams[1:]]
            for _, _, r in streams:
                r.close()
            return {"first": first, "deleted": deleted, "back": back, "second": second, "pings": pings}

    got = asyncio.run(run())
    assert got == {"first": 202, "deleted": 200, "back": 202, "second": 503, "pings": [200, 200, 200]}, got
