"""A scripted in-process target that can answer with tool calls and records what it was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tierwise.canonical import BlockDelta, Request, Response, StreamChunk, TextBlock, ToolUseBlock, Usage
from tierwise.policies.base import Context
from tierwise.policies.escalation import replay
from tierwise.verifiers.base import Verdict, VerifierChain


def answer(text: str = "", *tools: tuple[str, dict[str, Any]], usage: tuple[int, int] = (10, 5)) -> Response:
    """A response with `text` and optional tool calls `(name, input)`."""
    content: list[Any] = [TextBlock(text)] if text else []
    for i, (name, args) in enumerate(tools):
        content.append(ToolUseBlock(f"call_{name}_{i}_{id(args) % 1000}", name, args))
    return Response(id="resp", model="m", content=content, stop_reason="tool_use" if tools else "end_turn",
                    usage=Usage(*usage))


class Scripted:
    """Each script item is a text, a Response, an exception, or a callable(request) -> one of those."""

    def __init__(self, name: str, *script: Any, default: Any = "ok", cost: float = 0.0) -> None:
        self.name = name
        self.script = list(script)
        self.default = default
        self.cost = cost
        self.calls: list[Request] = []
        self.streams = 0

    def _answer(self, req: Request, ctx: Context) -> Response:
        self.calls.append(req)
        step = ctx.trace.call(self.name, model=self.name)
        item = self.script.pop(0) if self.script else self.default
        if callable(item) and not isinstance(item, Response):
            item = item(req)
        if isinstance(item, BaseException):
            step.ok, step.reason = False, str(item)
            raise item
        resp = item if isinstance(item, Response) else answer(str(item))
        step.ok, step.status, step.usage, step.cost = True, 200, resp.usage, self.cost
        return resp

    async def complete(self, req: Request, ctx: Context) -> Response:
        return self._answer(req, ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        self.streams += 1
        return replay(self._answer(req, ctx))


def with_cfg(target: Any, **traits: Any) -> Any:
    """Give a fake the config traits a deployment has (context_window, vision)."""

    class Cfg:
        pass

    cfg = Cfg()
    for k, v in traits.items():
        setattr(cfg, k, v)
    target.cfg = cfg
    return target


def step_names(ctx: Context) -> list[str]:
    return [f"{s.kind}:{s.name}" for s in ctx.trace.steps]


class Contains:
    """A minimal verifier (independent of the verifier modules): the answer contains `needle`."""

    def __init__(self, needle: str, name: str = "contains") -> None:
        self.needle = needle
        self.name = name
        self.seen: list[str] = []

    async def __call__(self, req: Request, resp: Response, ctx: Any) -> Verdict:
        self.seen.append(resp.text())
        ok = self.needle in resp.text()
        return Verdict(ok, "found" if ok else f"answer lacks {self.needle!r}", 1.0 if ok else 0.0, self.name)


def chain(*verifiers: Any) -> VerifierChain:
    return VerifierChain(list(verifiers))


def text_of(events: list[Any]) -> str:
    return "".join(ev.value for ev in events if isinstance(ev, BlockDelta) and ev.delta_type == "text")


async def collect(it: Any) -> list[Any]:
    return [ev async for chunk in it for ev in chunk.events]


class Digits:
    """A minimal verifier: the answer contains a digit."""

    name = "digits"

    async def __call__(self, req: Request, resp: Response, ctx: Any) -> Verdict:
        ok = any(c.isdigit() for c in resp.text())
        return Verdict(ok, "has a number" if ok else "no digits in the answer", None, self.name)
