"""The local target a spent budget sends a route to (`on_exhausted: downgrade`), refusing as the budget would
when that local model cannot hold the request.

The window error alone ("This model's maximum context length is 4096 tokens") named neither the budget nor the
downgrade: Codex turned it into "ran out of room in the model's context window. Start a new thread" (newuser37),
though the prompt had fit the remote model and only the spent budget had moved it. The refusal keeps the budget's
429 (its name, when it resets, Retry-After) and adds why the local model could not take the request instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tierwise.errors import BudgetExceeded, ContextOverflow


class Downgraded:
    """Calls `target` (the route's local tier); a context overflow there becomes the budget's refusal."""

    def __init__(self, target: Any, name: str | None, error: BudgetExceeded) -> None:
        self.target = target
        self.name = getattr(target, "name", name)
        self._to = name
        self._error = error

    def _refusal(self, e: ContextOverflow, ctx: Any) -> BudgetExceeded:
        for step in ctx.trace.steps:  # refused after all: `tierwise report` counts it so, not as downgraded
            if step.kind == "decision" and step.name == "budget" and step.detail.get("action") == "downgrade":
                step.detail["action"], step.detail["downgrade_failed"] = "refuse", "context_window"
        held = f"~{e.tokens:,} tokens" if e.tokens else "this request"
        window = f" > its window of {e.limit:,}" if e.limit else ""
        err = BudgetExceeded(f"{self._error.message}; the local model {self._to!r} this route answers from once "
                             f"the budget is spent cannot hold the request ({held}{window}): raise the budget, wait "
                             "for its reset, or serve a local model with a larger context")
        err.retry_after = getattr(self._error, "retry_after", None)  # type: ignore[attr-defined]
        return err

    async def complete(self, req: Any, ctx: Any) -> Any:
        try:
            return await self.target.complete(req, ctx)
        except ContextOverflow as e:
            raise self._refusal(e, ctx) from None

    async def stream(self, req: Any, ctx: Any) -> AsyncIterator[Any]:
        try:
            return await self.target.stream(req, ctx)  # type: ignore[no-any-return]
        except ContextOverflow as e:
            raise self._refusal(e, ctx) from None
