"""In-process fake targets for policy unit tests (the HTTP-level tests use tests/doubles)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    Response,
    StreamChunk,
    TextBlock,
    Usage,
)
from tierwise.errors import NotFound, UpstreamError
from tierwise.policies.base import Context
from tierwise.trace import Trace


def request(text: str = "hello", **kw: Any) -> Request:
    return Request(model=kw.pop("model", "main"), messages=[Message("user", [TextBlock(text)])], **kw)


def context(targets: dict[str, Any] | None = None, route: str = "main") -> Context:
    targets = targets or {}

    def resolve(name: str) -> Any:
        if name not in targets:
            raise NotFound(name)
        return targets[name]

    return Context(Trace("req_test", route), resolve)


class FakeTarget:
    """Answers from a script: each item is a text (answer) or an exception (raised)."""

    def __init__(self, name: str, *script: Any, default: str = "ok") -> None:
        self.name = name
        self.script = list(script)
        self.default = default
        self.calls: list[Request] = []

    def _next(self) -> Any:
        return self.script.pop(0) if self.script else self.default

    async def complete(self, req: Request, ctx: Context) -> Response:
        self.calls.append(req)
        step = ctx.trace.call(self.name)
        item = self._next()
        if isinstance(item, BaseException):
            step.ok = False
            step.reason = str(item)
            raise item
        step.ok = True
        step.usage = Usage(10, 5)
        return Response(id="r1", model=self.name, content=[TextBlock(item)], usage=Usage(10, 5))

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        self.calls.append(req)
        step = ctx.trace.call(self.name)
        item = self._next()
        if isinstance(item, BaseException):
            step.ok = False
            raise item
        step.ok = True

        async def gen() -> AsyncIterator[StreamChunk]:
            yield StreamChunk([MessageStart("r1", self.name), BlockStart(0, TextBlock(""))])
            for word in str(item).split(" "):
                yield StreamChunk([BlockDelta(0, "text", word)])
            yield StreamChunk([BlockStop(0), MessageDelta("end_turn", Usage(10, 5)), MessageStop()])

        return gen()


def fail(status: int = 503, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(f"HTTP {status}", upstream_status=status, retryable=status >= 500 or status == 429,
                         retry_after=retry_after, status=502 if status != 429 else 429)
