"""A verifier made from any Python callable named in config (`module:function`).

The callable gets `(req, resp, ctx, **options)`, may be sync or async, and returns a
Verdict, a bool, or a `(passed, reason)` pair. An exception inside it is a failed verdict
(naming the exception type only: its message may hold request data), not a crashed request.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tierwise.canonical import Request, Response
from tierwise.verifiers.base import Verdict, VerifyContext


class CallableVerifier:
    def __init__(self, fn: Callable[..., Any], options: dict[str, Any] | None = None, name: str = "callable") -> None:
        self.fn = fn
        self.options = dict(options or {})
        self.name = name

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        try:
            out = self.fn(req, resp, ctx, **self.options)
            if inspect.isawaitable(out):
                out = await out
        except Exception as e:
            return Verdict(False, f"verifier callable raised {type(e).__name__}", None, self.name)
        return self._as_verdict(out)

    def _as_verdict(self, out: Any) -> Verdict:
        if isinstance(out, Verdict):
            return out if out.name else Verdict(out.passed, out.reason, out.score, self.name, out.detail)
        if isinstance(out, bool):
            return Verdict(out, "passed" if out else "failed", 1.0 if out else 0.0, self.name)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], bool):
            return Verdict(out[0], str(out[1]), 1.0 if out[0] else 0.0, self.name)
        return Verdict(False, f"verifier callable returned {type(out).__name__}, expected Verdict, bool or "
                              "(bool, reason)", None, self.name)
