"""A scripted Anthropic Messages upstream that records every request a real client sends.

Why not tests/doubles/anthropic_double.py: this server has to *drive* Claude Code through a whole
session (tool calls, a subagent, a web fetch, compaction) by deciding each answer from the request,
and it must keep every request exactly as it arrived (path, headers, body) so tests can capture
Claude Code's traffic and assert where each kind of request went. It speaks real HTTP on loopback:
`POST /v1/messages` (whole body and SSE), `POST /v1/messages/count_tokens`, `GET /v1/models`, and it
records (and answers 404 to) anything else the client tries.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

# A reply: content blocks (Anthropic shapes) and usage overrides.
Reply = dict[str, Any]
Decide = Callable[["Captured"], Reply]


@dataclass
class Captured:
    """One request as the client sent it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    answered: str = ""  # a label the script chose for its answer

    @property
    def model(self) -> str:
        return str(self.body.get("model", "")) if isinstance(self.body, dict) else ""


def text_reply(text: str, **usage: int) -> Reply:
    return {"content": [{"type": "text", "text": text}], "usage": usage}


def tool_reply(tool_id: str, name: str, args: dict[str, Any], **usage: int) -> Reply:
    return {"content": [{"type": "tool_use", "id": tool_id, "name": name, "input": args}], "usage": usage}


@dataclass
class ScriptedAnthropicUpstream:
    decide: Decide
    requests: list[Captured] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)  # GET path -> HTML, for the WebFetch tool
    # A directory for a self-signed certificate: pages are then also served over HTTPS on
    # `https_url` (Claude Code's WebFetch upgrades http:// to https://). Trust it with NODE_EXTRA_CA_CERTS.
    tls_dir: Path | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ScriptedAnthropicUpstream:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted upstream did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def messages(self) -> list[Captured]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/messages" and r.method == "POST"]

    # ------------------------------------------------------------------ server

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        if self.tls_dir is not None:
            self.cert = make_self_signed(self.tls_dir)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert, self.tls_dir / "key.pem")
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                tls_port = int(s.getsockname()[1])
            self.https_url = f"https://127.0.0.1:{tls_port}"
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", tls_port, ssl_context=ctx).start())
        self._ready.set()
        self._loop.run_forever()

    async def _any(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        cap = Captured(request.method, request.path, request.query_string,
                       {k.lower(): v for k, v in request.headers.items()}, body)
        with self._lock:
            self.requests.append(cap)
        if request.method == "GET" and request.path in self.pages:
            return web.Response(text=self.pages[request.path], content_type="text/html")
        if request.method == "GET" and request.path == "/v1/models":
            return web.json_response({"data": [{"type": "model", "id": "claude-scripted", "display_name": "s"}],
                                      "has_more": False, "first_id": None, "last_id": None})
        if request.method == "POST" and request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": max(1, len(raw) // 4)})
        if request.method != "POST" or request.path != "/v1/messages" or not isinstance(body, dict):
            return web.json_response({"type": "error", "error": {"type": "not_found_error", "message": "not here"}},
                                     status=404)
        reply = self.decide(cap)
        cap.answered = str(reply.get("label", ""))
        mid = f"msg_scripted_{next(self._ids):04d}"
        content = reply["content"]
        stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
        usage = {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 0,
                 "cache_creation_input_tokens": 0, **reply.get("usage", {})}
        model = body.get("model", "claude-scripted")
        if not body.get("stream"):
            return web.json_response({"id": mid, "type": "message", "role": "assistant", "model": model,
                                      "content": content, "stop_reason": stop, "stop_sequence": None,
                                      "usage": usage})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)

        async def ev(name: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        start_usage = {**usage, "output_tokens": 1}
        await ev("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        for i, block in enumerate(content):
            if block["type"] == "text":
                await ev("content_block_start", {"type": "content_block_start", "index": i,
                                                 "content_block": {"type": "text", "text": ""}})
                for piece in _pieces(block["text"]):
                    await ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                                     "delta": {"type": "text_delta", "text": piece}})
            else:
                await ev("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                for piece in _pieces(json.dumps(block["input"])):
                    await ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                                     "delta": {"type": "input_json_delta", "partial_json": piece}})
            await ev("content_block_stop", {"type": "content_block_stop", "index": i})
        await ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": {"output_tokens": usage["output_tokens"]}})
        await ev("message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def make_self_signed(d: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (openssl CLI); returns the PEM path (it is its own CA)."""
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return d / "cert.pem"
