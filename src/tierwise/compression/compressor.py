"""The request rewrite: which parts of a request may be compressed, to how many tokens, and the
route wrapper that does it before the route's model is called.

Compressible: the text of messages before the last user turn, except the last `keep_last_turns`
of them — text blocks and the text of tool results (documents, command output, old turns). Never
touched: tool calls (their ids pair with results), thinking blocks (signed), images, and, unless
configured, the system prompt and the last user turn. Structure stays: a block whose passages all
lost keeps a one-line marker, so every tool result still answers its call.

Extractive: every compressible text is cut into passages, all passages are scored against the
last user turn, and the best are kept, in their original order, until the budget (compressible
tokens / ratio) is filled. Summary: the compressible text goes to `summary_model` with the
question, and its answer replaces the old turns as one user message.
The trace gets a decision step `compression` with tokens before and after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from tierwise.budgets.background import BACKGROUND, charge_calls
from tierwise.canonical import Message, Request, Response, StreamChunk, TextBlock, ToolResultBlock
from tierwise.compression.passages import scores, split
from tierwise.compression.settings import CompressionConfig, RouteCompression
from tierwise.errors import BudgetExceeded
from tierwise.policies.base import Context, Target
from tierwise.tokens import estimate_text
from tierwise.trace import Step

log = logging.getLogger("tierwise.compression")

GAP = "\n[…]\n"


def _omitted(n: int) -> str:
    return f"[… {n} tokens left out by tierwise compression …]"


def _last_user_index(msgs: list[Message]) -> int:
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].role == "user" and any(isinstance(b, TextBlock) and b.text for b in msgs[i].content):
            return i
    return len(msgs)


def _slots(req: Request, rc: RouteCompression) -> list[tuple[Any, int, int | None]]:
    """(holder, index, inner index) of every compressible text block; holder is a list of blocks."""
    out: list[tuple[Any, int, int | None]] = []
    if rc.include_system:
        out.extend((req.system, i, None) for i in range(len(req.system)))
    last = _last_user_index(req.messages)
    upto = max(0, last - rc.keep_last_turns)
    indices = list(range(upto))
    if rc.include_last_user and last < len(req.messages):
        indices.append(last)
    for mi in indices:
        blocks = req.messages[mi].content
        for bi, b in enumerate(blocks):
            if isinstance(b, TextBlock):
                out.append((blocks, bi, None))
            elif isinstance(b, ToolResultBlock):
                out.extend((blocks, bi, ci) for ci, c in enumerate(b.content) if isinstance(c, TextBlock))
    return out


def _get(slot: tuple[Any, int, int | None]) -> str:
    holder, i, j = slot
    b = holder[i]
    return b.content[j].text if j is not None else b.text  # type: ignore[no-any-return]


def _copy(req: Request) -> Request:
    """A copy whose message and block lists (and text blocks) can be rewritten in place."""
    def block(b: Any) -> Any:
        if isinstance(b, TextBlock):
            return TextBlock(b.text, extra=b.extra)
        if isinstance(b, ToolResultBlock):
            return ToolResultBlock(b.tool_use_id, [block(c) for c in b.content], b.is_error)
        return b

    return req.with_changes(messages=[Message(m.role, [block(b) for b in m.content]) for m in req.messages],
                            system=[TextBlock(b.text, extra=b.extra) for b in req.system])


def _set(slot: tuple[Any, int, int | None], text: str) -> None:
    holder, i, j = slot
    if j is not None:
        holder[i].content[j].text = text
    else:
        holder[i].text = text


def extract(req: Request, rc: RouteCompression, embedder: Any = None) -> tuple[Request, int, int]:
    """The request with its compressible text cut to the budget; (request, tokens before, after)."""
    out = _copy(req)
    slots = _slots(out, rc)
    texts = [_get(s) for s in slots]
    before = sum(estimate_text(t) for t in texts)
    if before < max(rc.min_tokens, 1):
        return req, before, before
    budget = int(before / rc.ratio)
    pieces: list[tuple[int, int, str]] = []  # (slot, position, passage)
    for si, t in enumerate(texts):
        pieces.extend((si, k, p) for k, p in enumerate(split(t, rc.passage_chars)))
    query = req.last_user_text()
    s = scores([p for _, _, p in pieces], query, embedder)
    keep: set[int] = set()
    used = 0
    for i in sorted(range(len(pieces)), key=lambda i: -float(s[i])):
        cost = estimate_text(pieces[i][2]) + 1
        if used + cost > budget:
            continue
        keep.add(i)
        used += cost
    by_slot: dict[int, list[str]] = {}
    for i, (si, _, p) in enumerate(pieces):
        if i in keep:
            by_slot.setdefault(si, []).append(p)
    after = 0
    for si, slot in enumerate(slots):
        kept = by_slot.get(si)
        new = GAP.join(kept) if kept else _omitted(estimate_text(texts[si]))
        if kept and len(kept) < sum(1 for x in pieces if x[0] == si):
            new += GAP.rstrip("\n")
        _set(slot, new)
        after += estimate_text(new)
    return out, before, after


SUMMARY_PROMPT = ("Summarise the context below for someone who must answer the question that follows it. Keep "
                  "every fact, name, number and code identifier the question may need; drop the rest. Answer with "
                  "the summary only, in at most {words} words.\n\nQUESTION: {question}\n\nCONTEXT:\n{context}")


async def summarise(req: Request, rc: RouteCompression, ctx: Context) -> tuple[Request, int, int]:
    last = _last_user_index(req.messages)
    upto = max(0, last - rc.keep_last_turns)
    old = req.messages[:upto]
    text = "\n\n".join(f"[{m.role}] {m.text()}" + "".join(
        f"\n[tool result] {''.join(c.text for c in b.content if isinstance(c, TextBlock))}"
        for b in m.content if isinstance(b, ToolResultBlock)) for m in old)
    before = estimate_text(text)
    if before < max(rc.min_tokens, 1) or rc.summary_model is None:
        return req, before, before
    if any(not isinstance(b, (TextBlock, ToolResultBlock)) for m in old for b in m.content) or any(
            isinstance(b, ToolResultBlock) for m in req.messages[upto:] for b in m.content):
        return req, before, before  # tool calls would lose their pairing: leave such a request whole
    target = max(32, int(before / rc.ratio))
    prompt = SUMMARY_PROMPT.format(words=int(target * 0.75), question=req.last_user_text(), context=text)
    sreq = Request(model=rc.summary_model, messages=[Message("user", [TextBlock(prompt)])], max_tokens=target + 64,
                   temperature=0)
    n = len(ctx.trace.steps)
    # its remote calls are the request's spend, admitted one by one now that it runs (never reserved by the
    # requests it does not run for: budgets/background.py)
    charged = charge_calls(ctx, req)
    try:
        resp = await ctx.resolve(rc.summary_model).complete(sreq, ctx)
    finally:
        if charged:
            ctx.notes.pop(BACKGROUND, None)
    for st in ctx.trace.steps[n:]:
        if st.kind == "call":
            st.detail["role"] = "summary"  # a helper call: not the answer (ledger)
    summary = resp.text()
    msgs = [Message("user", [TextBlock(f"Summary of the earlier conversation:\n{summary}")])]
    rest = req.messages[upto:]
    if rest and rest[0].role == "user":  # keep user/assistant alternation
        msgs.append(Message("assistant", [TextBlock("Understood.")]))
    out = req.with_changes(messages=msgs + rest)
    return out, before, estimate_text(summary)


class Compressor:
    def __init__(self, cfg: CompressionConfig) -> None:
        self.cfg = cfg
        self._embedder: Any = None

    def embedder(self) -> Any:
        if self._embedder is None:
            from tierwise.routers.features import Embedder

            self._embedder = Embedder()
        return self._embedder

    def wrap(self, target: Target, ctx: Context) -> Target:
        rc = self.cfg.routes.get(ctx.trace.route)
        if rc is None:
            return target
        from tierwise.budgets.controller import Refused

        # a request its budget refused is not compressed: a summary model would be paid for an answer never asked
        return target if type(target) is Refused else CompressingTarget(self, target, rc)

    async def compress(self, req: Request, rc: RouteCompression, ctx: Context) -> Request:
        t0 = time.perf_counter()
        try:
            if rc.method == "summary":
                out, before, after = await summarise(req, rc, ctx)
            else:
                emb = self.embedder() if rc.embeddings else None
                out, before, after = await asyncio.to_thread(extract, req, rc, emb)
        except BudgetExceeded:  # the summariser's call was refused (its budget step says which): the request goes whole
            ctx.trace.steps.append(Step("decision", "compression", ok=False,
                                        reason="skipped (a budget refused the summary call); context sent whole"))
            return req
        except Exception as e:  # compression is an optimisation: on failure the request goes whole
            log.warning("compression failed (%s); sending the context whole", type(e).__name__)
            ctx.trace.steps.append(Step("decision", "compression", ok=False,
                                        reason=f"failed ({type(e).__name__}); context sent whole"))
            return req
        if out is req:
            return req
        # A step of its own (not `decide`, which would replace the policy's reason for the request).
        ctx.trace.steps.append(Step("decision", "compression", reason=f"{rc.method}: {before} -> {after} tokens",
                                    detail={"method": rc.method, "tokens_before": before, "tokens_after": after},
                                    latency_ms=(time.perf_counter() - t0) * 1000))
        return out


class CompressingTarget:
    def __init__(self, compressor: Compressor, inner: Target, rc: RouteCompression) -> None:
        self.compressor = compressor
        self.inner = inner
        self.rc = rc
        self.name = getattr(inner, "name", "compressed")

    async def complete(self, req: Request, ctx: Context) -> Response:
        return await self.inner.complete(await self.compressor.compress(req, self.rc, ctx), ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        return await self.inner.stream(await self.compressor.compress(req, self.rc, ctx), ctx)
