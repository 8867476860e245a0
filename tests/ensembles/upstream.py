"""A small OpenAI-compatible upstream for ensemble tests and the fan-out benchmark.

Real HTTP on 127.0.0.1 (aiohttp in its own thread). Unlike the scripted doubles in
tests/doubles, answers depend on the request (the model id and prompt pick the answer), so
many agents can share one server in any order; every request's start and end time and the
most requests in flight at once (per model and overall) are recorded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.harness import free_port


@dataclass
class Fault:
    """Answer with an HTTP error instead of text."""

    status: int = 500
    message: str = "upstream exploded"


@dataclass
class Seen:
    model: str
    prompt: str
    system: str
    start: float
    end: float = 0.0


Answer = Callable[[str, str], "str | Fault"]  # (model, prompt) -> answer


@dataclass
class StubUpstream:
    answer: Answer = field(default=lambda model, prompt: f"echo: {prompt[:40]}")
    # Seconds before answering: fixed, per model id, or a function of (model, prompt).
    latency: float | dict[str, float] | Callable[[str, str], float] = 0.05
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    max_in_flight_by_model: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._by_model: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _latency(self, model: str, prompt: str) -> float:
        if callable(self.latency):
            return self.latency(model, prompt)
        return self.latency.get(model, 0.0) if isinstance(self.latency, dict) else self.latency

    async def _chat(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        model = str(body.get("model"))
        msgs = body.get("messages") or []
        prompt = "".join(str(m.get("content")) for m in msgs if m.get("role") == "user")
        system = "".join(str(m.get("content")) for m in msgs if m.get("role") == "system")
        rec = Seen(model, prompt, system, time.perf_counter())
        self.seen.append(rec)
        self.in_flight += 1
        self._by_model[model] = self._by_model.get(model, 0) + 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_in_flight_by_model[model] = max(self.max_in_flight_by_model.get(model, 0), self._by_model[model])
        try:
            await asyncio.sleep(self._latency(model, prompt))
            out = self.answer(model, prompt)
        finally:
            self.in_flight -= 1
            self._by_model[model] -= 1
            rec.end = time.perf_counter()
        if isinstance(out, Fault):
            return web.json_response({"error": {"message": out.message, "type": "server_error"}}, status=out.status)
        return web.json_response({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": out}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": max(1, len(out) // 4),
                      "total_tokens": max(1, len(prompt) // 4) + max(1, len(out) // 4)},
        })

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> StubUpstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stub upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def calls(self, model: str) -> list[Seen]:
        return [s for s in self.seen if s.model == model]
