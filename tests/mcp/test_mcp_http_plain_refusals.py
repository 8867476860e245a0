"""The mcp package's own refusals in JSON-RPC (wire12). Its transport guard answered a wrong `Content-Type` (400),
an Origin it does not allow (403) and a Host it does not serve (421) in plain text with no content type
(`Invalid Content-Type header`), where every other answer of the server, the gateway's refusals included, is a
JSON-RPC error object an MCP client can read. Now such an answer keeps its status and words, as a JSON-RPC error.
`tierwise mcp --transport http` as served (the gateway's protocol), real HTTP."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.mcp.test_mcp_http_sessions import AUTH, open_session, serving

PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


def test_the_packages_plain_text_refusals_come_as_json_rpc_errors():
    async def run() -> dict[str, tuple[int, str, object]]:
        async with serving(as_served=True) as url, aiohttp.ClientSession() as c:
            _, sid = await open_session(c, url)
            h = {**AUTH, "mcp-session-id": sid or "", "mcp-protocol-version": "2025-06-18"}
            got = {}
            for name, more in (("content-type", {"content-type": "text/plain"}),
                               ("origin", {"origin": "http://evil.example"}),
                               ("host", {"host": "evil.example"})):
                async with c.post(url, data=PING, headers={**h, **more}) as r:
                    raw = await r.read()
                    try:
                        body: object = json.loads(raw)
                    except ValueError:
                        body = raw
                    got[name] = (r.status, r.headers.get("content-type", ""), body)
            return got

    got = asyncio.run(run())
    assert {k: (s, t) for k, (s, t, _) in got.items()} == {
        "content-type": (400, "application/json"), "origin": (403, "application/json"),
        "host": (421, "application/json")}, got
    for name, (_, _, body) in got.items():
        assert isinstance(body, dict) and body["jsonrpc"] == "2.0" and body["id"] is None, got
        assert body["error"]["code"] == -32600 and name.split("-")[0] in body["error"]["message"].lower(), got
