"""An Anthropic Messages API upstream: `POST /v1/messages` (whole and SSE, `?beta=true` accepted),
`POST /v1/messages/count_tokens`, `GET /v1/models`.

`url` is the base URL an Anthropic provider (or the SDK) takes as is; paths start with `/v1`.
Requests are checked the way the real API checks them: the `anthropic-version` header,
`max_tokens`, `model`, `messages` and the block types; the key only when `api_key` is set.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.doubles.base import DoubleServer, RecordedRequest, Rejected, estimate_tokens
from tests.doubles.openai_double import split_fragments
from tests.doubles.script import Reply, StreamError

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
          529: "overloaded_error"}
_BLOCK_TYPES = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use",
    "mcp_tool_result", "container_upload", "tool_reference",
})


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class AnthropicDouble(DoubleServer):
    """A scripted Anthropic API server. See tests/doubles/script.py for the items."""

    kind = "anthropic"

    def __init__(self, *, api_key: str | None = None, models: list[str] | None = None, strict: bool = True) -> None:
        """`strict`: also check what the real API checks across messages (tool_use/tool_result pairing)."""
        super().__init__(api_key=api_key, models=models or ["claude-double-1"])
        self.strict = strict
        self._counter = 0
        self.count_tokens_raw: bytes | None = None  # when set: count_tokens answers exactly this body

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.route(self._messages))
        app.router.add_post("/v1/messages/count_tokens", self.route(self._count_tokens))
        app.router.add_get("/v1/models", self.route(self._models))

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_double{self._counter:06d}"

    def extra_headers(self) -> dict[str, str]:
        return {"request-id": self._id("req")}

    # ------------------------------------------------------------------ errors

    def error_body(self, status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
        etype = error_type or _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": etype, "message": message}, "request_id": self._id("req")}

    def stream_error_chunk(self, err: StreamError) -> bytes:
        if err.data is not None:
            return event("error", err.data)
        return event("error", {"type": "error", "error": {"type": err.error_type, "message": err.msg}})

    # ------------------------------------------------------------------ validation

    def _check_common(self, rec: RecordedRequest) -> dict[str, Any]:
        if "anthropic-version" not in rec.headers:
            raise Rejected(400, "anthropic-version: header is required")
        self.check_key(rec)
        body = rec.body
        if not isinstance(body, dict):
            raise Rejected(400, "There was an error parsing the body of your request")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise Rejected(400, "model: Field required" if "model" not in body else "model: Input should be a string")
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            raise Rejected(400, "messages: Field required" if msgs is None else "messages: Input should be a list")
        if not msgs:
            raise Rejected(400, "messages: at least one message is required")
        # System turns mid-conversation are accepted only under their beta flag (Claude Code sends it).
        roles = ("user", "assistant", "system") if "mid-conversation-system" in rec.headers.get(
            "anthropic-beta", "") else ("user", "assistant")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in roles:
                raise Rejected(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            _check_content(m.get("content"), f"messages.{i}.content")
        if self.strict:
            _check_tool_pairing(msgs)
            _check_tools(body.get("tools"))
        system = body.get("system")
        if system is not None and not isinstance(system, (str, list)):
            raise Rejected(400, "system: Input should be a valid string or list")
        if isinstance(system, list):
            _check_content(system, "system")
        return body

    def _validate_messages(self, rec: RecordedRequest) -> bool:
        body = self._check_common(rec)
        mt = body.get("max_tokens")
        if mt is None:
            raise Rejected(400, "max_tokens: Field required")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise Rejected(400, "max_tokens: Input should be a valid integer greater than or equal to 1")
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise Rejected(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            # Interleaved thinking spreads the budget over the turn: it may exceed max_tokens.
            if budget >= mt and "interleaved-thinking" not in rec.headers.get("anthropic-beta", ""):
                raise Rejected(400, "`max_tokens` must be greater than `thinking.budget_tokens`")
        stream = body.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise Rejected(400, "stream: Input should be a valid boolean")
        return bool(stream)

    # ------------------------------------------------------------------ handlers

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        try:
            stream = self._validate_messages(rec)
        except Rejected as e:
            return self.error_response(rec, e.status, e.message, e.error_type)
        return await self.answer(request, rec, stream)

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        try:
            body = self._check_common(rec)
        except Rejected as e:
            return self.error_response(rec, e.status, e.message, e.error_type)
        rec.status = 200
        if self.count_tokens_raw is not None:  # a hostile count (tests/security/test_hostile_upstream_shapes.py)
            return web.Response(status=200, body=self.count_tokens_raw, content_type="application/json")
        return self.json_response(200, {"input_tokens": _input_tokens(body)})

    async def _models(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        try:
            if "anthropic-version" not in rec.headers:
                raise Rejected(400, "anthropic-version: header is required")
            self.check_key(rec)
        except Rejected as e:
            return self.error_response(rec, e.status, e.message, e.error_type)
        rec.status = 200
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in self.models]
        return self.json_response(200, {"data": data, "has_more": False, "first_id": self.models[0],
                                        "last_id": self.models[-1]})

    # ------------------------------------------------------------------ rendering

    def _tokens(self, reply: Reply, rec: RecordedRequest) -> tuple[int, int]:
        if reply.usage is not None:
            return reply.usage
        out = len(reply.pieces()) + sum(estimate_tokens(t.args) for t in reply.tool_calls)
        out += len((reply.thinking or "").split())
        return _input_tokens(rec.body), max(1, out)

    def _usage(self, inp: int, out: int, reply: Reply) -> dict[str, Any]:
        hour = reply.cache_write_tokens and reply.cache_write_1h_tokens
        u = {"input_tokens": inp, "cache_creation_input_tokens": reply.cache_write_tokens,
             "cache_read_input_tokens": reply.cache_read_tokens, "output_tokens": out,
             "cache_creation": {"ephemeral_5m_input_tokens": reply.cache_write_tokens - hour,
                                "ephemeral_1h_input_tokens": hour},
             "service_tier": "standard"}
        if reply.web_searches:
            u["server_tool_use"] = {"web_search_requests": reply.web_searches}
        return u

    def _stop(self, reply: Reply) -> str:
        if reply.stop_reason:
            return _STOP.get(reply.stop_reason, reply.stop_reason)
        return "tool_use" if reply.tool_calls else "end_turn"

    def _tool_id(self, reply: Reply, j: int) -> str:
        return reply.tool_calls[j].id or f"toolu_double{j:02d}"

    def render_body(self, reply: Reply, rec: RecordedRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.thinking is not None:
            content.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature})
        if reply.text or not reply.tool_calls:
            content.append({"type": "text", "text": reply.text})
        for j, tc in enumerate(reply.tool_calls):
            content.append({"type": "tool_use", "id": self._tool_id(reply, j), "name": tc.name, "input": tc.args})
        inp, out = self._tokens(reply, rec)
        return {"id": self._id("msg"), "type": "message", "role": "assistant",
                "model": reply.model or rec.body["model"], "content": content, "stop_reason": self._stop(reply),
                "stop_sequence": None, "usage": self._usage(inp, out, reply)}

    def render_chunks(self, reply: Reply, rec: RecordedRequest) -> list[bytes]:
        inp, out = self._tokens(reply, rec)
        message: dict[str, Any] = {"id": self._id("msg"), "type": "message", "role": "assistant",
                   "model": reply.model or rec.body["model"], "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": self._usage(inp, 1, reply)}
        chunks = [event("message_start", {"type": "message_start", "message": message})]
        index = 0

        def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index
            chunks.append(event("content_block_start",
                                {"type": "content_block_start", "index": index, "content_block": start}))
            if index == 0:
                chunks.append(event("ping", {"type": "ping"}))  # the real API pings after the first block opens
            for d in deltas:
                chunks.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                            "delta": d}))
            chunks.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if reply.thinking is not None:
            pieces = Reply(text=reply.thinking).pieces()
            block({"type": "thinking", "thinking": "", "signature": ""},
                  [{"type": "thinking_delta", "thinking": p} for p in pieces]
                  + [{"type": "signature_delta", "signature": reply.signature}])
        if reply.text or not reply.tool_calls:
            block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in reply.pieces()])
        for j, tc in enumerate(reply.tool_calls):
            frags = [""] + split_fragments(orjson.dumps(tc.args).decode())
            block({"type": "tool_use", "id": self._tool_id(reply, j), "name": tc.name, "input": {}},
                  [{"type": "input_json_delta", "partial_json": f} for f in frags])
        chunks.append(event("message_delta", {"type": "message_delta",
                                              "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
                                              "usage": {"output_tokens": out, **({"server_tool_use": {
                                                  "web_search_requests": reply.web_searches}} if reply.web_searches
                                                  else {})}}))
        chunks.append(event("message_stop", {"type": "message_stop"}))
        return chunks


def _check_content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Rejected(400, f"{where}: Input should be a valid string or list")
    for k, b in enumerate(content):
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise Rejected(400, f"{where}.{k}: Input should be a valid dictionary with a `type`")
        if b["type"] not in _BLOCK_TYPES:
            raise Rejected(400, f"{where}.{k}: Input tag '{b['type']}' found using 'type' does not match any "
                                "of the expected tags")
        if b["type"] == "text" and not isinstance(b.get("text"), str):
            raise Rejected(400, f"{where}.{k}.text: Field required")


def _blocks(m: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = m.get("content")
    return [b for b in content if b.get("type") == kind] if isinstance(content, list) else []


def _check_tool_pairing(msgs: list[dict[str, Any]]) -> None:
    """Each tool_result answers a tool_use of the message just before it, and each tool_use
    (but in the last message) is answered in the message just after it — as the real API insists."""
    for i, m in enumerate(msgs):
        results = {b.get("tool_use_id") for b in _blocks(m, "tool_result")}
        if results:
            prev = {b.get("id") for b in _blocks(msgs[i - 1], "tool_use")} if i and msgs[i - 1].get(
                "role") == "assistant" else set()
            missing = sorted(str(x) for x in results - prev)
            if missing:
                raise Rejected(400, f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` "
                                    f"blocks: {', '.join(missing)}. Each `tool_result` block must have a "
                                    "corresponding `tool_use` block in the previous message.")
        uses = {b.get("id") for b in _blocks(m, "tool_use")}
        if uses and i + 1 < len(msgs):
            answered = {b.get("tool_use_id") for b in _blocks(msgs[i + 1], "tool_result")}
            unanswered = sorted(str(x) for x in uses - answered)
            if unanswered:
                raise Rejected(400, f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                                    f"immediately after: {', '.join(unanswered)}. Each `tool_use` block must have "
                                    "a corresponding `tool_result` block in the next message.")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Rejected(400, "tools: Input should be a valid list")
    for k, t in enumerate(tools):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise Rejected(400, f"tools.{k}.name: Field required")
        if t.get("type") in (None, "custom") and not isinstance(t.get("input_schema"), dict):
            raise Rejected(400, f"tools.{k}.custom.input_schema: Field required")


def _input_tokens(body: dict[str, Any]) -> int:
    return estimate_tokens([body.get("system"), body.get("messages"), body.get("tools")])

