"""Draft-and-verify: the local model drafts a complete answer; the frontier model checks it
in one short call (a few output tokens, a strict yes/no or JSON verdict); accepted drafts
are returned, rejected ones go to `on_reject` (typically a cascade route or the frontier
model itself).

Checking is much cheaper than writing: the frontier call reads the request and the draft
but writes a handful of tokens. It pays when most drafts are good; when most are bad, a
plain cascade (or the frontier model directly) costs less.

The verdict parser is deliberately forgiving in form and strict in meaning: it finds a JSON
object or a leading yes/no anywhere sensible, and anything it cannot read counts as a
rejection (configurable), because accepting an unchecked draft is the costly mistake.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import orjson
from pydantic import Field

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.errors import UpstreamError
from tierwise.policies.base import Context, Target
from tierwise.policies.cascade import build_verifier_chain, check_verifier_specs, judge_models, run_chain
from tierwise.policies.escalation import (
    finish,
    mark,
    non_streaming,
    render_blocks,
    render_transcript,
    replay,
    tag_calls,
    text_request,
)
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.verifiers.base import VerifierChain

VerdictFormat = Literal["yes_no", "json"]

SYSTEM_YES_NO = (
    "You are a strict reviewer. You are shown a request and a candidate answer written by another "
    "assistant. Reply with exactly one word: YES if the answer is correct, complete and follows the "
    "request, NO otherwise. No other text."
)
SYSTEM_JSON = (
    "You are a strict reviewer. You are shown a request and a candidate answer written by another "
    'assistant. Reply with only a JSON object: {"ok": true} if the answer is correct, complete and '
    'follows the request, otherwise {"ok": false, "reason": "<at most 15 words>"}.'
)
PROMPT = "REQUEST:\n{request}\n\nCANDIDATE ANSWER:\n{answer}\n\nIs the candidate answer acceptable?"


@dataclass(frozen=True, slots=True)
class CheckResult:
    accepted: bool | None  # None: the reviewer's reply could not be read
    reason: str


_YES = re.compile(r"^\W*(yes|y|true|accept(ed)?|correct|pass(ed)?)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|n|false|reject(ed)?|incorrect|fail(ed)?)\b", re.IGNORECASE)
_JSON_OBJ = re.compile(r"\{.*?\}", re.DOTALL)
_OK_KEYS = ("ok", "accept", "accepted", "correct", "pass", "passed", "valid", "verdict", "answer")


def _truthy(v: object) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        if _YES.match(v):
            return True
        if _NO.match(v):
            return False
    return None


def parse_check(text: str) -> CheckResult:
    """Read the reviewer's verdict from a yes/no word or a JSON object, wherever it sits."""
    t = text.strip()
    # Reasoning models sometimes wrap output in tags or code fences; strip the common ones.
    t = re.sub(r"<think>.*?</think>", "", t, flags=re.DOTALL | re.IGNORECASE).strip()
    t = t.strip("`").removeprefix("json").strip()
    for m in _JSON_OBJ.finditer(t):
        try:
            obj = orjson.loads(m.group(0))
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for k in _OK_KEYS:
                if k in obj:
                    verdict = _truthy(obj[k])
                    if verdict is not None:
                        reason = str(obj.get("reason") or ("accepted" if verdict else "rejected"))
                        return CheckResult(verdict, reason[:300])
    first_line = t.splitlines()[0] if t else ""
    if _YES.match(first_line):
        return CheckResult(True, "reviewer said yes")
    if _NO.match(first_line):
        rest = first_line[_NO.match(first_line).end():].strip(" .:,-")  # type: ignore[union-attr]
        return CheckResult(False, rest[:300] or "reviewer said no")
    # Last resort: a lone verdict word at the very end ("... so the answer is NO.").
    tail = re.findall(r"\b(yes|no)\b\W*$", t, flags=re.IGNORECASE)
    if tail:
        return CheckResult(tail[-1].lower() == "yes", f"reviewer ended with {tail[-1].upper()}")
    return CheckResult(None, f"could not read the reviewer's verdict: {t[:80]!r}")


class DraftVerify:
    def __init__(
        self,
        name: str,
        draft: Target,
        checker: Target,
        on_reject: Target,
        *,
        verdict_format: VerdictFormat = "yes_no",
        check_max_tokens: int = 16,
        max_answer_chars: int = 24_000,
        accept_unparseable: bool = False,
        prechecks: VerifierChain | None = None,
    ) -> None:
        self.name = name
        self.draft = draft
        self.checker = checker
        self.on_reject = on_reject
        self.verdict_format = verdict_format
        self.check_max_tokens = check_max_tokens
        self.max_answer_chars = max_answer_chars
        self.accept_unparseable = accept_unparseable
        self.prechecks = prechecks or VerifierChain([])

    def check_request(self, req: Request, draft: Response) -> Request:
        answer = render_blocks(draft.content)
        if len(answer) > self.max_answer_chars:
            answer = answer[: self.max_answer_chars] + "\n[... truncated]"
        prompt = PROMPT.format(request=render_transcript(req.messages, req.system), answer=answer or "(empty)")
        system = SYSTEM_JSON if self.verdict_format == "json" else SYSTEM_YES_NO
        return text_request(req, prompt, system=system, max_tokens=self.check_max_tokens)

    async def _check(self, req: Request, draft: Response, ctx: Context) -> CheckResult:
        start = mark(ctx)
        try:
            reply = await self.checker.complete(self.check_request(req, draft), ctx)
        finally:
            tag_calls(ctx, start, "verify")
        result = parse_check(reply.text())
        if result.accepted is None:
            ok = self.accept_unparseable
            ctx.trace.verdict(self.checker.name, ok, result.reason, detail={"parsed": False})
            return CheckResult(ok, result.reason)
        ctx.trace.verdict(self.checker.name, result.accepted, result.reason)
        return result

    async def complete(self, req: Request, ctx: Context) -> Response:
        req = non_streaming(req)
        try:
            draft = await self.draft.complete(req, ctx)
        except UpstreamError as e:
            finish(ctx, self.on_reject.name,
                   f"draft by {self.draft.name} failed ({e.message}): using {self.on_reject.name}", self.name)
            return await self.on_reject.complete(req, ctx)
        if draft.tool_uses():
            # A tool call is a step, not an answer: nothing to verify; let the client run it.
            finish(ctx, self.draft.name, f"{self.draft.name} called a tool: passed through unchecked", self.name,
                   verified=False)
            return draft
        if self.prechecks.verifiers:
            pre = await run_chain(self.prechecks, req, draft, ctx, self.draft)
            if not pre.passed:
                finish(ctx, self.on_reject.name, f"draft failed {pre.name or 'precheck'} ({pre.reason}): "
                       f"using {self.on_reject.name} without asking {self.checker.name}", self.name)
                return await self.on_reject.complete(req, ctx)
        try:
            result = await self._check(req, draft, ctx)
        except UpstreamError as e:
            finish(ctx, self.on_reject.name, f"check by {self.checker.name} failed ({e.message}): using "
                   f"{self.on_reject.name}", self.name)
            return await self.on_reject.complete(req, ctx)
        if result.accepted:
            finish(ctx, self.draft.name, f"{self.checker.name} accepted {self.draft.name}'s draft", self.name,
                   verified=True)
            return draft
        finish(ctx, self.on_reject.name, f"{self.checker.name} rejected the draft ({result.reason}): using "
               f"{self.on_reject.name}", self.name)
        return await self.on_reject.complete(req, ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        # The draft may only reach the client once the frontier model accepted it.
        ctx.notes["buffered_stream"] = True
        return replay(await self.complete(req, ctx))


class DraftVerifyConfig(PolicyConfig):
    policy: str = "draft_verify"
    draft: str = Field(description="the (local) model or route that writes the draft")
    verifier: str = Field(description="the (frontier) model that checks the draft")
    on_reject: str = Field(description="model or route used when the draft is rejected (e.g. a cascade)")
    verdict_format: VerdictFormat = "yes_no"
    check_max_tokens: int = Field(16, ge=1, le=1024)
    max_answer_chars: int = Field(24_000, ge=100)
    accept_unparseable: bool = False
    prechecks: list[object] = Field(default_factory=list, description="cheap verifiers run before the check")
    reference: str | None = None

    def model_post_init(self, _: object) -> None:
        check_verifier_specs(list(self.prechecks), "prechecks")


def _build(cfg: DraftVerifyConfig, name: str, b: Builder) -> Target:
    chain = build_verifier_chain(list(cfg.prechecks), b.services, "prechecks") if cfg.prechecks else None
    return DraftVerify(
        name,
        b.resolve(cfg.draft),
        b.resolve(cfg.verifier),
        b.resolve(cfg.on_reject),
        verdict_format=cfg.verdict_format,
        check_max_tokens=cfg.check_max_tokens,
        max_answer_chars=cfg.max_answer_chars,
        accept_unparseable=cfg.accept_unparseable,
        prechecks=chain,
    )


register(
    PolicyType(
        "draft_verify",
        DraftVerifyConfig,
        _build,
        lambda c: [c.draft, c.verifier, c.on_reject] + judge_models(list(c.prechecks))
        + ([c.reference] if c.reference else []),
    )
)
