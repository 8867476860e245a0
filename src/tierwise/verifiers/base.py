"""The verifier interface: what a cascade asks after a model answers ("is this good enough?").

A verifier is any object with a `name` and an async `__call__(req, resp, ctx) -> Verdict`.
Verifiers never raise for a bad answer: a bad answer is a failed `Verdict` with a reason a
human can read in the trace. They raise only for misuse (e.g. a self-consistency verifier
given a context without a `sample` helper), as `VerifierError`.

`VerifyContext` carries the few helpers some verifiers need from the policy that runs them;
everything in it is optional so the deterministic verifiers (JSON, regex, code, arithmetic)
run with an empty context.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tierwise.canonical import Request, Response
from tierwise.errors import TierwiseError

log = logging.getLogger("tierwise.verifiers")

# (n) -> n extra samples of the same request from the tier being verified (self-consistency).
SampleFn = Callable[[int], Awaitable[list[Response]]]
# (model or route name, request) -> that model's response (LLM judge).
JudgeFn = Callable[[str, Request], Awaitable[Response]]
# (texts) -> one embedding vector per text (semantic self-consistency).
EmbedFn = Callable[[list[str]], Awaitable[list[list[float]]]]


class VerifierError(TierwiseError):
    """A verifier was misconfigured or misused (not: the answer was bad — that is a Verdict)."""

    status = 500
    kind = "api_error"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one verifier on one answer.

    `score` is optional and in [0, 1] where a verifier has a graded notion of quality
    (fraction of equations correct, agreement rate, judge grade); cascades gate on `passed`,
    benchmarks and learned combiners may use `score`.
    """

    passed: bool
    reason: str
    score: float | None = None
    name: str = ""
    # Anything a verifier wants in the trace beyond the reason (e.g. the failing equation).
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class VerifyContext:
    """Optional helpers the running policy lends to verifiers.

    - `sample(n)`: n additional samples of the same request from the tier under test.
    - `judge(model, request)`: call a named model/route (LLM judge); the policy resolves the name.
    - `embed(texts)`: embedding vectors, for similarity-based agreement.
    - `services`: the app's services object (pricing, ledger, ...), for custom callables.
    """

    sample: SampleFn | None = None
    judge: JudgeFn | None = None
    embed: EmbedFn | None = None
    services: Any = None


@runtime_checkable
class Verifier(Protocol):
    name: str

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict: ...


class VerifierChain:
    """Runs verifiers in order and stops at the first failure.

    The chain's verdict is the failing verifier's verdict (so the cascade can tell the
    stronger model exactly what was wrong), or a pass that lists what was checked. `verdicts`
    on the returned detail keeps every individual verdict for the trace.
    """

    def __init__(self, verifiers: Sequence[Verifier], name: str = "chain") -> None:
        self.verifiers = list(verifiers)
        self.name = name

    async def run(self, req: Request, resp: Response, ctx: VerifyContext) -> list[Verdict]:
        """Every verdict up to and including the first failure (for per-step traces)."""
        out: list[Verdict] = []
        for v in self.verifiers:
            try:
                verdict = await v(req, resp, ctx)
            except Exception as e:
                # A check that cannot run (its judge is down, a schema that does not resolve) is a
                # failed check: the policy escalates rather than answering with an error.
                name = getattr(v, "name", type(v).__name__)
                log.warning("verifier %s could not run: %s", name, type(e).__name__)
                verdict = Verdict(False, f"could not check ({type(e).__name__})", None, name,
                                  {"error": type(e).__name__})
            out.append(verdict)
            if not verdict.passed:
                break
        return out

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        verdicts = await self.run(req, resp, ctx)
        if verdicts and not verdicts[-1].passed:
            last = verdicts[-1]
            return Verdict(False, f"{last.name}: {last.reason}", last.score, self.name,
                           {"verdicts": verdicts})
        scores = [v.score for v in verdicts if v.score is not None]
        score = min(scores) if scores else None
        names = ", ".join(v.name for v in verdicts) or "no verifiers"
        return Verdict(True, f"passed: {names}", score, self.name, {"verdicts": verdicts})


def answer_text(resp: Response) -> str:
    """The text a verifier judges: the response's text blocks joined."""
    return resp.text()
