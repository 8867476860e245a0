"""A scripted OpenAI-compatible upstream that plays the model behind a real coding agent.

Why not the shared doubles: this upstream has to *drive* an agent (Claude Code) through a tool
round trip. It answers the agent's main conversation with a tool call the first time and with
final text once the tool result comes back, and it answers every side request the agent makes
(title generation, background "haiku" calls, quota probes) with plain text, so the agent never
stalls on an answer it did not expect. It speaks real HTTP on loopback, whole bodies and SSE.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Decision = tuple[str, dict[str, Any]]  # ("tool_call" | "final" | "side", assistant message)


@dataclass
class Exchange:
    """One request the upstream received and the kind of answer it chose."""

    body: dict[str, Any]
    kind: str

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.body.get("tools") or []]

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        return [m for m in self.body.get("messages", []) if m.get("role") == "tool"]


@dataclass
class WriteFileScript:
    """Script: ask the agent's `Write` tool to create one file, then report success in text."""

    path: str
    content: str
    final_text: str = "Done: the file is written."
    side_text: str = "Write a greeting file"
    tool_call_id: str = "call_write_1"
    tool_name: str = "Write"

    def decide(self, body: dict[str, Any]) -> Decision:
        messages = body.get("messages") or []
        answered = [m for m in messages if m.get("role") == "tool" and m.get("tool_call_id") == self.tool_call_id]
        offered = any(t.get("function", {}).get("name") == self.tool_name for t in body.get("tools") or [])
        if answered:
            return "final", {"role": "assistant", "content": self.final_text}
        if offered:
            call = {
                "id": self.tool_call_id,
                "type": "function",
                "function": {"name": self.tool_name,
                             "arguments": json.dumps({"file_path": self.path, "content": self.content})},
            }
            return "tool_call", {"role": "assistant", "content": None, "tool_calls": [call]}
        return "side", {"role": "assistant", "content": self.side_text}


@dataclass
class ScriptedAgentUpstream:
    """Serves `POST /v1/chat/completions` from a script's `decide(body)` on a background thread."""

    decide: Callable[[dict[str, Any]], Decision]
    model: str = "scripted-agent"
    exchanges: list[Exchange] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def start(self) -> ScriptedAgentUpstream:
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

    def kinds(self) -> list[str]:
        return [e.kind for e in self.exchanges]

    # ------------------------------------------------------------------ server

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "body is not JSON", "type": "invalid_request_error"}},
                                     status=400)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return web.json_response({"error": {"message": "messages must be a list",
                                                "type": "invalid_request_error"}}, status=400)
        kind, message = self.decide(body)
        self.exchanges.append(Exchange(body, kind))
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        cid = f"chatcmpl-scripted-{next(self._ids)}"
        if not body.get("stream"):
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": int(time.time()), "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage,
            })
        return await self._stream(request, cid, message, finish, usage, body)

    async def _stream(self, request: web.Request, cid: str, message: dict[str, Any], finish: str,
                      usage: dict[str, int], body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)

        async def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": self.model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra}
            await resp.write(b"data: " + json.dumps(payload).encode() + b"\n\n")

        await chunk({"role": "assistant", "content": ""})
        text = message.get("content") or ""
        for piece in _pieces(text):
            await chunk({"content": piece})
        for i, call in enumerate(message.get("tool_calls") or []):
            args = call["function"]["arguments"]
            await chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": ""}}]})
            for piece in _pieces(args):  # arguments arrive in fragments, as real servers send them
                await chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        await chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                           "model": self.model, "choices": [], "usage": usage}
            await resp.write(b"data: " + json.dumps(usage_chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]
