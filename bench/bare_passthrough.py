"""The floor for a Python gateway: a bare ASGI app on uvicorn that forwards each request to one
upstream with aiohttp and relays the answer, with no routing, translation, ledger or checks.

    python bench/bare_passthrough.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse

import aiohttp
import uvicorn

UPSTREAM = ""
_session: aiohttp.ClientSession | None = None


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    global _session
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    headers = {"content-type": "application/json"}
    async with _session.post(UPSTREAM + scope["path"], data=body, headers=headers) as r:
        ctype = r.headers.get("content-type", "application/json").encode()
        await send({"type": "http.response.start", "status": r.status, "headers": [(b"content-type", ctype)]})
        async for data in r.content.iter_any():
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def main() -> None:
    global UPSTREAM
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    a = ap.parse_args()
    UPSTREAM = a.upstream.rstrip("/")
    uvicorn.run(app, host="127.0.0.1", port=a.port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
