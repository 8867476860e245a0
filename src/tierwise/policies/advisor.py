"""Advisor: a cheap executor drives the task and consults a frontier advisor as a tool.

The executor gets an `advisor` function tool. When it calls it, tierwise asks the advisor
model (with the conversation so far, optionally compressed by a local model first), returns
the advice as the tool result and lets the executor continue, up to `max_uses`
consultations and `max_turns` executor calls per request. Advisor calls are tagged
`role: advisor` on the trace and their tokens and cost are summed separately in the final
decision, so the ledger shows what the advice cost next to what the execution cost.

Anthropic's advisor tool (`{"type": "advisor_20260301", "name": "advisor", "model": ...,
"max_uses": ...}` in `tools`) is accepted from clients: when the executor is an Anthropic
model it is passed through and Anthropic runs it natively; otherwise tierwise emulates it
and answers with the same content blocks Anthropic would (`server_tool_use` with empty
input, then `advisor_tool_result` holding `{"type": "advisor_result", "text": ...}`).
Those blocks, echoed back by the client on the next turn, are turned into a plain tool call
and result for the executor, so earlier advice stays in its context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field

from tierwise.canonical import (
    Block,
    Message,
    OtherBlock,
    Request,
    Response,
    StreamChunk,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import NotFound, PermissionDenied, UpstreamError
from tierwise.ids import new_id
from tierwise.policies.base import Context, Target
from tierwise.policies.escalation import (
    finish,
    mark,
    non_streaming,
    render_transcript,
    replay,
    summarise,
    tag_calls,
    text_request,
    usage_and_cost,
)
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register

ANTHROPIC_TOOL_PREFIX = "advisor_"  # advisor_20260301 and later versions
RESULT_TYPE = "advisor_tool_result"

TOOL_DESCRIPTION = (
    "Ask a stronger advisor model for guidance: a plan before starting, a second opinion when "
    "unsure, or help when stuck. The advisor sees the conversation so far. Use it sparingly."
)
ADVISOR_SYSTEM = (
    "You advise another assistant (the executor) that is working on the user's task. Read the "
    "conversation, then give a short, concrete plan or course correction the executor can follow. "
    "Do not write the final answer for the user; advise the executor."
)
ADVISOR_PROMPT = "CONVERSATION SO FAR:\n{transcript}\n\nTHE EXECUTOR ASKS: {question}\n\nYour advice:"
MAX_USES_TEXT = "The advisor may not be consulted again for this request (max_uses reached). Continue on your own."


def advisor_tool(name: str) -> Tool:
    return Tool(
        name=name,
        description=TOOL_DESCRIPTION,
        input_schema={
            "type": "object",
            "properties": {"question": {"type": "string", "description": "what you want advice on"}},
        },
    )


def client_advisor_tool(req: Request) -> Tool | None:
    """The client's Anthropic advisor tool definition, if it sent one."""
    for t in req.tools:
        if t.raw and str(t.raw.get("type", "")).startswith(ANTHROPIC_TOOL_PREFIX):
            return t
    return None


def is_anthropic(target: Target) -> bool:
    provider = getattr(target, "provider", None)
    return getattr(provider, "kind", None) == "anthropic"


def native_tool(tool: Tool, advisor: Target, max_uses: int) -> Tool | None:
    """The client's advisor tool as an Anthropic executor runs it: naming the advisor tierwise chose (an Anthropic
    deployment, by its upstream model id) with at most the route's `max_uses`, never the client's own choice,
    which Anthropic would bill to the operator's key. None when that advisor is not an Anthropic model: then
    tierwise emulates the tool."""
    model = getattr(getattr(advisor, "cfg", None), "model", None)
    if not is_anthropic(advisor) or not isinstance(model, str) or tool.raw is None:
        return None
    return Tool(tool.name, tool.description, tool.input_schema, {**tool.raw, "model": model, "max_uses": max_uses})


def _is_server_advisor_use(b: Block, tool_name: str) -> bool:
    return isinstance(b, ToolUseBlock) and b.server and b.name == tool_name


def _advice_text(raw: dict[str, Any]) -> tuple[str, bool]:
    content = raw.get("content")
    if isinstance(content, dict):
        if content.get("type") == "advisor_result":
            return str(content.get("text", "")), False
        if "error_code" in content:
            return f"advisor unavailable: {content['error_code']}", True
    return "advisor result not available", True


def lower_advisor_blocks(messages: list[Message], tool_name: str) -> list[Message]:
    """Earlier emulated (or native) advisor blocks -> an ordinary tool call and its result.

    Anthropic keeps the server tool use and its result inside one assistant message; a
    function-calling executor needs the call in an assistant message and the result in the
    next user message, so such messages are split at each result.
    """
    out: list[Message] = []
    for m in messages:
        has = m.role == "assistant" and any(
            _is_server_advisor_use(b, tool_name) or (isinstance(b, OtherBlock) and b.raw.get("type") == RESULT_TYPE)
            for b in m.content
        )
        if not has:
            out.append(m)
            continue
        cur: list[Block] = []
        pending: set[str] = set()
        for b in m.content:
            if _is_server_advisor_use(b, tool_name):
                assert isinstance(b, ToolUseBlock)
                cur.append(ToolUseBlock(b.id, tool_name, dict(b.input)))
                pending.add(b.id)
            elif isinstance(b, OtherBlock) and b.raw.get("type") == RESULT_TYPE:
                use_id = str(b.raw.get("tool_use_id", ""))
                if use_id not in pending:
                    continue
                pending.discard(use_id)
                text, err = _advice_text(b.raw)
                out.append(Message("assistant", cur))
                out.append(Message("user", [ToolResultBlock(use_id, [TextBlock(text)], is_error=err)]))
                cur = []
            else:
                cur.append(b)
        # A call whose result never came would break the executor's API: drop it.
        cur = [b for b in cur if not (isinstance(b, ToolUseBlock) and b.id in pending)]
        if cur:
            out.append(Message("assistant", cur))
    return out


def server_blocks(call: ToolUseBlock, advice: str | None, error_code: str | None) -> list[Block]:
    """The two blocks Anthropic emits for one advisor consultation."""
    srv_id = new_id("srvtoolu_")
    if advice is not None:
        content: dict[str, Any] = {"type": "advisor_result", "text": advice}
    else:
        content = {"type": "advisor_tool_result_error", "error_code": error_code or "unavailable"}
    return [
        ToolUseBlock(srv_id, call.name, {}, server=True),
        OtherBlock({"type": RESULT_TYPE, "tool_use_id": srv_id, "content": content}),
    ]


class Advisor:
    def __init__(
        self,
        name: str,
        executor: Target,
        advisor: Target,
        *,
        max_uses: int = 3,
        max_turns: int = 8,
        compress: bool = False,
        compressor: Target | None = None,
        advisor_max_tokens: int = 1024,
        tool_name: str = "advisor",
    ) -> None:
        self.name = name
        self.executor = executor
        self.advisor = advisor
        self.max_uses = max_uses
        self.max_turns = max_turns
        self.compress = compress
        self.compressor = compressor or executor
        self.advisor_max_tokens = advisor_max_tokens
        self.tool_name = tool_name

    # ------------------------------------------------------------------ the consultation

    async def consult(self, req: Request, advisor: Target, history: list[Message], call: ToolUseBlock,
                      ctx: Context) -> tuple[str | None, str | None]:
        """(advice, None) or (None, error_code); never raises for an upstream failure."""
        question = str(call.input.get("question") or call.input.get("prompt") or "What should I do next?")
        if self.compress:
            try:
                transcript = await summarise(req, history, self.compressor, ctx)
            except UpstreamError as e:
                ctx.trace.decide(self.name, f"compression by {self.compressor.name} failed ({e.message}): "
                                 "sending the full transcript")
                transcript = render_transcript(history, req.system)
        else:
            transcript = render_transcript(history, req.system)
        prompt = ADVISOR_PROMPT.format(transcript=transcript, question=question)
        start = mark(ctx)
        try:
            resp = await advisor.complete(
                text_request(req, prompt, system=ADVISOR_SYSTEM, max_tokens=self.advisor_max_tokens), ctx
            )
        except UpstreamError as e:
            tag_calls(ctx, start, "advisor")
            ctx.trace.decide(self.name, f"advisor {advisor.name} failed ({e.message}): executor continues without")
            return None, "unavailable"
        tag_calls(ctx, start, "advisor")
        return resp.text().strip(), None

    # ------------------------------------------------------------------ the executor loop

    def _settings(self, req: Request, ctx: Context) -> tuple[Target, int]:
        """Advisor and max_uses, from the client's advisor tool where it names them."""
        advisor, max_uses = self.advisor, self.max_uses
        tool = client_advisor_tool(req)
        if tool is None or tool.raw is None:
            return advisor, max_uses
        model = tool.raw.get("model")
        if isinstance(model, str) and model:
            key = ctx.notes.get("key_scope")  # the request's key (server.api_keys_env) may limit what it names
            try:
                if key is not None:
                    key.admit(model, model, getattr(ctx.services, "deployments", {}))
                advisor = ctx.resolve(model)
            except (NotFound, PermissionDenied) as e:
                why = "is not configured here" if isinstance(e, NotFound) else "is not one this key may use"
                ctx.trace.decide(self.name, f"client's advisor model {model[:200]!r} {why}: using {self.advisor.name}")
        mu = tool.raw.get("max_uses")
        if isinstance(mu, int) and not isinstance(mu, bool) and mu >= 0:
            max_uses = min(mu, self.max_uses)
        return advisor, max_uses

    async def complete(self, req: Request, ctx: Context) -> Response:
        req = non_streaming(req)
        client_tool = client_advisor_tool(req)
        advisor, max_uses = self._settings(req, ctx)
        native = native_tool(client_tool, advisor, max_uses) if client_tool is not None and is_anthropic(
            self.executor) else None
        if native is not None:
            finish(ctx, self.executor.name, f"{self.executor.name} is an Anthropic model: the client's advisor "
                   f"tool runs natively there (advisor {advisor.name})", self.name, emulated=False)
            tools = [native if t is client_tool else t for t in req.tools]
            return await self.executor.complete(req.with_changes(tools=tools), ctx)
        tools = [t for t in req.tools if t is not client_tool and t.name != self.tool_name]
        tools.append(advisor_tool(self.tool_name))
        history = lower_advisor_blocks(req.messages, self.tool_name)
        first_turn_start = mark(ctx)
        out_blocks: list[Block] = []
        exec_usage = Usage()
        uses = 0
        resp: Response | None = None
        stop_note = ""
        for turn in range(self.max_turns):
            resp = await self.executor.complete(req.with_changes(messages=history, tools=tools), ctx)
            exec_usage.add(resp.usage)
            calls = [b for b in resp.tool_uses() if b.name == self.tool_name]
            if not calls:
                out_blocks.extend(resp.content)
                break
            results: list[Block] = []
            advice: str | None
            error: str | None
            emitted: dict[str, list[Block]] = {}
            for c in calls:
                if uses >= max_uses:
                    advice, error = None, "max_uses_exceeded"
                    ctx.trace.decide(self.name, f"executor asked the advisor again after {uses} uses: refused "
                                     "(max_uses)")
                else:
                    uses += 1
                    seen = history + [Message("assistant", [b for b in resp.content if not isinstance(b, ToolUseBlock)])]
                    advice, error = await self.consult(req, advisor, seen, c, ctx)
                text = advice if advice is not None else (MAX_USES_TEXT if error == "max_uses_exceeded"
                                                          else "The advisor is unavailable. Continue on your own.")
                results.append(ToolResultBlock(c.id, [TextBlock(text)], is_error=advice is None))
                emitted[c.id] = server_blocks(c, advice, error)
            for b in resp.content:
                if isinstance(b, ToolUseBlock) and b.id in emitted:
                    out_blocks.extend(emitted[b.id])
                else:
                    out_blocks.append(b)
            if any(b.name != self.tool_name for b in resp.tool_uses()):
                stop_note = "executor also called the client's tools: returning them to the client"
                break
            history = history + [Message("assistant", list(resp.content)), Message("user", results)]
            if turn == self.max_turns - 1:
                stop_note = f"executor loop cap ({self.max_turns} turns) reached"
        assert resp is not None
        return self._answer(resp, out_blocks, exec_usage, uses, ctx, first_turn_start, stop_note)

    def _answer(self, last: Response, blocks: list[Block], exec_usage: Usage, uses: int, ctx: Context,
                start: int, stop_note: str) -> Response:
        advisor_steps = [s for s in ctx.trace.steps[start:] if s.kind == "call" and s.detail.get("role") == "advisor"]
        adv_usage, adv_cost = usage_and_cost(advisor_steps)
        stop = last.stop_reason
        if stop_note and "client's tools" in stop_note:
            stop = "tool_use"
        elif stop == "tool_use" and not any(isinstance(b, ToolUseBlock) and not b.server for b in blocks):
            stop = "end_turn"  # only advisor calls were made, and they were answered here
        reason = f"{self.executor.name} answered after {uses} advisor consultation(s)"
        if stop_note:
            reason += f"; {stop_note}"
        summary = {
            "advisor_uses": uses,
            "advisor_input_tokens": adv_usage.input_tokens,
            "advisor_output_tokens": adv_usage.output_tokens,
            "advisor_cost": adv_cost,
            "executor_input_tokens": exec_usage.input_tokens,
            "executor_output_tokens": exec_usage.output_tokens,
        }
        ctx.notes["advisor"] = summary
        finish(ctx, self.executor.name, reason, self.name, emulated=True, **summary)
        # OpenAI clients see the text and client tool calls only (their codec skips server blocks).
        return Response(
            id=last.id,
            model=last.model,
            content=blocks,
            stop_reason=stop,
            stop_sequence=last.stop_sequence,
            usage=exec_usage,
        )

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        # The executor loop needs each executor answer whole (to see advisor calls): replay the result.
        ctx.notes["buffered_stream"] = True
        return replay(await self.complete(req, ctx))


class AdvisorConfig(PolicyConfig):
    policy: str = "advisor"
    executor: str = Field(description="the (local) model that does the work")
    advisor: str = Field(description="the (frontier) model it may consult")
    max_uses: int = Field(3, ge=0, le=50, description="consultations per request")
    max_turns: int = Field(8, ge=1, le=100, description="executor calls per request")
    compress: bool = Field(False, description="summarise the conversation locally before asking the advisor")
    compressor: str | None = Field(None, description="model that compresses (default: the executor)")
    advisor_max_tokens: int = Field(1024, ge=16)
    tool_name: str = Field("advisor", pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
    reference: str | None = None


def _build(cfg: AdvisorConfig, name: str, b: Builder) -> Target:
    return Advisor(
        name,
        b.resolve(cfg.executor),
        b.resolve(cfg.advisor),
        max_uses=cfg.max_uses,
        max_turns=cfg.max_turns,
        compress=cfg.compress,
        compressor=b.resolve(cfg.compressor) if cfg.compressor else None,
        advisor_max_tokens=cfg.advisor_max_tokens,
        tool_name=cfg.tool_name,
    )


register(
    PolicyType(
        "advisor",
        AdvisorConfig,
        _build,
        lambda c: [c.executor, c.advisor]
        + ([c.compressor] if c.compressor else [])
        + ([c.reference] if c.reference else []),
    )
)
