"""An OpenAI-compatible upstream (the shape OpenAI, vLLM, llama.cpp and Ollama's /v1 share):
`POST /v1/chat/completions` (whole and SSE), `POST /v1/embeddings`, `GET /v1/models`.

`url` has no `/v1`: a provider's base_url is `double.url + "/v1"`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
from typing import Any

import orjson
from aiohttp import web

from tests.doubles.base import DoubleServer, RecordedRequest, Rejected, estimate_tokens
from tests.doubles.script import Reply, StreamError

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
          404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
          422: "invalid_request_error", 429: "requests"}
_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


def split_fragments(text: str, parts: int = 3) -> list[str]:
    """Split a tool call's argument JSON in several fragments, as real streams deliver it."""
    if not text:
        return [""]
    size = max(1, math.ceil(len(text) / parts))
    return [text[i:i + size] for i in range(0, len(text), size)]


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class OpenAIDouble(DoubleServer):
    """A scripted OpenAI-compatible server. See tests/doubles/script.py for the items."""

    kind = "openai"

    def __init__(self, *, api_key: str | None = None, models: list[str] | None = None,
                 embedding_dims: int = 16, strict: bool = True, cap_field: str | None = None) -> None:
        """`strict`: check tool-call pairing and tool definitions as OpenAI does (llama.cpp is laxer).
        `cap_field`: "max_completion_tokens" refuses `max_tokens` as OpenAI's reasoning models do (o1/o3/o4-mini,
        gpt-5); "max_tokens" reads only that field, as Ollama and TGI do. `read_caps` holds the cap each call
        was bound by (None: none it reads)."""
        super().__init__(api_key=api_key, models=models)
        self.strict = strict
        self.cap_field = cap_field
        self.read_caps: list[Any] = []
        self.embedding_dims = embedding_dims
        self.embeddings_raw: bytes | None = None  # when set: embeddings answers exactly this body (status 200)
        self._counter = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.route(self._chat))
        app.router.add_post("/v1/embeddings", self.route(self._embeddings))
        app.router.add_get("/v1/models", self.route(self._models))

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-double{self._counter:06d}"

    # ------------------------------------------------------------------ errors

    def error_body(self, status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
        etype = error_type or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": etype, "param": None, "code": _CODES.get(status)}}

    def stream_error_chunk(self, err: StreamError) -> bytes:
        if err.data is not None:
            return sse(err.data)
        return sse({"error": {"message": err.msg, "type": err.error_type, "param": None, "code": None}})

    # ------------------------------------------------------------------ chat completions

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        try:
            self.check_key(rec)
            stream = self._validate_chat(rec)
        except Rejected as e:
            return self.error_response(rec, e.status, e.message, e.error_type)
        return await self.answer(request, rec, stream)

    def _validate_chat(self, rec: RecordedRequest) -> bool:
        body = rec.body
        if not isinstance(body, dict):
            raise Rejected(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise Rejected(400, "you must provide a model parameter")
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            raise Rejected(400, "'messages' is a required property")
        if not msgs:
            raise Rejected(400, "[] is too short - 'messages'")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                raise Rejected(400, f"Invalid value for 'messages[{i}].role'")
            content = m.get("content")
            if content is not None and not isinstance(content, (str, list)):
                raise Rejected(400, f"Invalid type for 'messages[{i}].content'")
        if self.cap_field == "max_completion_tokens" and "max_tokens" in body:
            raise Rejected(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                "Use 'max_completion_tokens' instead.")
        if self.cap_field is not None:
            self.read_caps.append(body.get(self.cap_field))
        if self.strict:
            _check_tool_messages(msgs)
            _check_tools(body.get("tools"))
        n = body.get("n", 1)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > 128):
            raise Rejected(400, f"Invalid value for 'n': {n!r}")
        stream = body.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise Rejected(400, "Invalid type for 'stream': expected a boolean")
        return bool(stream)

    def _usage(self, reply: Reply, rec: RecordedRequest) -> dict[str, Any]:
        if reply.usage is not None:
            inp, out = reply.usage
        else:
            inp = estimate_tokens(rec.body.get("messages"))
            out = max(1, len(reply.pieces()) + sum(estimate_tokens(t.args) for t in reply.tool_calls))
        det: dict[str, Any] = {"cached_tokens": reply.cache_read_tokens, "audio_tokens": 0}
        if reply.cache_write_tokens:  # (as OpenRouter reports the writes of an upstream that bills them: Anthropic's)
            det["cache_write_tokens"] = reply.cache_write_tokens
        hidden = reply.reasoning_tokens
        if not reply.reasoning_outside_completion:
            out += hidden
        usage = {
            "prompt_tokens": inp, "completion_tokens": out,
            "total_tokens": inp + out + (hidden if reply.reasoning_outside_completion else 0),
            "prompt_tokens_details": det,
            "completion_tokens_details": {"reasoning_tokens": hidden, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }
        if reply.cost is not None:  # (as OpenRouter reports what it billed: its credits are dollars)
            usage.update(cost=reply.cost, is_byok=False, cost_details={"upstream_inference_cost": None})
        return usage

    def _finish(self, reply: Reply) -> str:
        if reply.stop_reason:
            return _FINISH.get(reply.stop_reason, reply.stop_reason)
        return "tool_calls" if reply.tool_calls else "stop"

    @staticmethod
    def _vllm_stop(reply: Reply) -> dict[str, Any]:
        """vLLM names the stop string an answer ended on in `stop_reason` (OpenAI itself does not)."""
        return {"stop_reason": reply.matched_stop} if reply.matched_stop else {}

    def _wants_logprobs(self, reply: Reply, rec: RecordedRequest) -> bool:
        """Logprobs come back only when the request asks and the scripted server supports them."""
        return reply.logprobs and bool(rec.body.get("logprobs"))

    def _token_logprob(self, piece: str, i: int, top: int) -> dict[str, Any]:
        lp = -0.05 * (i % 7)  # deterministic, varied
        alts = [{"token": piece, "logprob": lp, "bytes": list(piece.encode())}]
        for k in range(1, top):
            alt = f"{piece.strip() or '_'}~{k}"
            alts.append({"token": alt, "logprob": lp - 1.5 * k, "bytes": list(alt.encode())})
        return {"token": piece, "logprob": lp, "bytes": list(piece.encode()), "top_logprobs": alts[:top]}

    def _tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [{"id": tc.id or f"call_double{j}", "type": "function",
                 "function": {"name": tc.name, "arguments": orjson.dumps(tc.args).decode()}}
                for j, tc in enumerate(reply.tool_calls)]

    def render_body(self, reply: Reply, rec: RecordedRequest) -> dict[str, Any]:
        body = rec.body
        message: dict[str, Any] = {"role": "assistant", "content": reply.text if (reply.text or not reply.tool_calls)
                                   else None, "refusal": None, "annotations": []}
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        logprobs = None
        if self._wants_logprobs(reply, rec):
            top = int(body.get("top_logprobs") or 0)
            logprobs = {"content": [self._token_logprob(p, i, top) for i, p in enumerate(reply.pieces())],
                        "refusal": None}
        n = int(body.get("n") or 1)
        choices = [{"index": i, "message": message, "logprobs": logprobs, "finish_reason": self._finish(reply),
                    **self._vllm_stop(reply)} for i in range(n)]
        return {"id": self._id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
                "model": reply.model or body["model"], "choices": choices, "usage": self._usage(reply, rec),
                "service_tier": "default", "system_fingerprint": "fp_double"}

    def render_chunks(self, reply: Reply, rec: RecordedRequest) -> list[bytes]:
        body = rec.body
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        base: dict[str, Any] = {"id": self._id("chatcmpl"), "object": "chat.completion.chunk",
                                "created": int(time.time()), "model": reply.model or body["model"],
                                "service_tier": "default", "system_fingerprint": "fp_double"}
        if include_usage:
            base["usage"] = None

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
            return sse({**base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                             "finish_reason": finish, **(self._vllm_stop(reply) if finish else {})}]})

        want_lp = self._wants_logprobs(reply, rec)
        top = int(body.get("top_logprobs") or 0)
        out: list[bytes] = []
        for c in range(int(body.get("n") or 1)):
            out.append(chunk(c, {"role": "assistant", "content": "", "refusal": None}))
            for i, piece in enumerate(reply.pieces()):
                lp = {"content": [self._token_logprob(piece, i, top)], "refusal": None} if want_lp else None
                out.append(chunk(c, {"content": piece}, logprobs=lp))
            for j, tc in enumerate(self._tool_calls(reply)):
                fn = tc["function"]
                out.append(chunk(c, {"tool_calls": [{"index": j, "id": tc["id"], "type": "function",
                                                     "function": {"name": fn["name"], "arguments": ""}}]}))
                for frag in split_fragments(fn["arguments"]):
                    out.append(chunk(c, {"tool_calls": [{"index": j, "function": {"arguments": frag}}]}))
            out.append(chunk(c, {}, self._finish(reply)))
        if include_usage:
            out.append(sse({**base, "choices": [], "usage": self._usage(reply, rec)}))
        out.append(b"data: [DONE]\n\n")
        return out

    # ------------------------------------------------------------------ embeddings and models

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        try:
            self.check_key(rec)
            body = rec.body
            if not isinstance(body, dict):
                raise Rejected(400, "We could not parse the JSON body of your request.")
            if not isinstance(body.get("model"), str):
                raise Rejected(400, "you must provide a model parameter")
            texts = _embedding_inputs(body.get("input"))
            dims = body.get("dimensions", self.embedding_dims)
            # Like the real API: a positive size no larger than the model's own (3072 at most).
            if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 3072:
                raise Rejected(400, f"Invalid value for 'dimensions': {dims!r}")
            fmt = body.get("encoding_format", "float")
            if fmt not in ("float", "base64"):
                raise Rejected(400, f"Invalid value for 'encoding_format': {fmt!r}")
        except Rejected as e:
            return self.error_response(rec, e.status, e.message, e.error_type)
        if self.embeddings_raw is not None:  # a hostile answer (tests/security/test_hostile_upstream_shapes.py)
            rec.status = 200
            return web.Response(status=200, body=self.embeddings_raw, content_type="application/json")
        data = []
        for i, t in enumerate(texts):
            vec = embed(t, dims)
            emb: Any = vec if fmt == "float" else base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(estimate_tokens(t) for t in texts)
        rec.status = 200
        return self.json_response(200, {"object": "list", "data": data, "model": body["model"],
                                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        try:
            self.check_key(rec)
        except Rejected as e:
            return self.error_response(rec, e.status, e.message, e.error_type)
        rec.status = 200
        return self.json_response(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "double"} for m in self.models]})


def _check_tool_messages(msgs: list[Any]) -> None:
    """A `tool` message answers a pending tool call of the assistant message before it, and every
    tool call is answered before the conversation moves on — OpenAI rejects anything else."""
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role")
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                raise Rejected(400, f"Invalid parameter: messages with role 'tool' must be a response to a "
                                    f"preceeding message with 'tool_calls'. (messages[{i}])")
            pending.discard(m["tool_call_id"])
            continue
        if pending:
            raise Rejected(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                                f"response messages: {', '.join(sorted(pending))}")
        calls = m.get("tool_calls") if role == "assistant" else None
        if isinstance(calls, list):
            for k, c in enumerate(calls):
                fn = c.get("function") if isinstance(c, dict) else None
                if not isinstance(c, dict) or not isinstance(c.get("id"), str) or not isinstance(fn, dict) \
                        or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
                    raise Rejected(400, f"Invalid value for 'messages[{i}].tool_calls[{k}]'")
                pending.add(c["id"])


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Rejected(400, "Invalid type for 'tools': expected an array")
    for k, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or t.get("type") != "function":
            raise Rejected(400, f"Missing required parameter: 'tools[{k}].function'")


def _embedding_inputs(value: Any) -> list[str]:
    """The inputs as strings: a string, strings, token ids or lists of token ids (as the API takes)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, list) and v and all(isinstance(x, int) for x in v) for v in value):
            return [" ".join(map(str, v)) for v in value]
    raise Rejected(400, "'input' must be a non-empty string, array of strings or array of token arrays")


def embed(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for `text` (same text → same vector, different → different)."""
    raw = b""
    block = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    vals = [(int.from_bytes(raw[i * 4:i * 4 + 4], "little") / 2**32) * 2 - 1 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in vals)) or 1.0
    # float32-representable values, so base64 and float encodings decode to the same numbers
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in vals]
