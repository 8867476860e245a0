"""OpenAI Responses API (`POST /v1/responses`), client side: request in, response and errors out.

`decode_request` turns a Responses body (`input` as a string or a list of items, `instructions`,
function tools, `text.format`, `reasoning`) into the canonical Request; `encode_response` turns a
canonical Response into a Responses object; the stream encoder lives in
`openai_responses_stream.py`. No upstream speaks this format through tierwise (upstreams are
OpenAI Chat-compatible or Anthropic), so there is no upstream side and no byte pass-through.

`Exchange` is one request's view of the codec: it knows the client's store owner (for
`previous_response_id`) and the decoded request's echo fields, which the response repeats.
The asgi handler uses it where it uses a codec module.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import time
from typing import Any

import orjson

from tierwise.canonical import (
    Block,
    ImageBlock,
    Message,
    RedactedThinkingBlock,
    Request,
    Response,
    ResponseFormat,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolUseBlock,
    Usage,
    WireFormat,
)
from tierwise.errors import InvalidRequest, TierwiseError
from tierwise.ids import new_id
from tierwise.wire import request_parts
from tierwise.wire._check import get_bool, get_dict, get_int, get_list, get_num, get_str, need
from tierwise.wire.openai_chat.response import error_object as chat_error_object

FORMAT: WireFormat = "responses"

KNOWN_FIELDS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "temperature", "top_p", "text", "reasoning", "stream", "store", "previous_response_id", "metadata", "user",
    "top_logprobs", "background", "conversation", "prompt", "include", "truncation", "stream_options",
    "safety_identifier", "prompt_cache_key", "service_tier", "max_tool_calls", "client_metadata",
})
# Tools the upstream provider would run on its own account (search, code, MCP, files): a chat or
# Messages upstream cannot run them for a Responses client, so they are left out of the request
# (Codex sends `web_search` on every turn; refusing it would refuse Codex).
HOSTED_TOOL_PREFIXES = ("web_search", "file_search", "code_interpreter", "computer", "image_generation", "mcp",
                        "local_shell", "shell", "apply_patch", "custom", "tool_search")
NAMESPACE_SEP = "__"  # a namespace tool `ns` with function `f` reaches the model as `ns__f`
REDACTED_PREFIX = "tierwise-redacted:"  # encrypted_content of a reasoning item that was redacted thinking
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_STOP_STATUS = {"max_tokens": ("incomplete", "max_output_tokens"), "refusal": ("incomplete", "content_filter")}


class ResponsesInvalid(InvalidRequest):
    """A 400 that names the offending parameter and an OpenAI error code."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.param = param
        self.code = code


_ID_KEY = secrets.token_bytes(32)
_ID_COUNTER = itertools.count()


def response_id() -> str:
    """Unguessable: a response id is all a client needs to continue a stored conversation. A keyed
    hash of a counter (the key is random per process) costs a fraction of an os.urandom call."""
    # The pid keeps forked workers (which share the key and the counter) apart.
    msg = next(_ID_COUNTER).to_bytes(8, "little") + os.getpid().to_bytes(8, "little")
    return "resp_" + hashlib.blake2b(msg, key=_ID_KEY, digest_size=16).hexdigest()


def item_id(kind: str) -> str:
    """Output item ids (msg_, fc_, rs_) only need to be unique."""
    return new_id(kind)


def owner_of(keys_required: bool, given: str | None) -> str:
    """Whose stored responses a request may read: a digest of its gateway key when keys are
    configured (one client cannot read another's), nobody in particular when the gateway is open."""
    if not keys_required or not given:
        return ""
    return hashlib.sha256(given.encode()).hexdigest()


# ============================================================================ decode


def _image(part: dict[str, Any], p: str) -> ImageBlock:
    need(part.get("file_id") is None, f"{p}.file_id",
         "file ids name files in an OpenAI account; send the image as image_url (a URL or data: URL)")
    url = get_str(part, "image_url", p, required=True) or ""
    return request_parts.image_from_url(url, get_str(part, "detail", p), f"{p}.image_url")


def _parts(content: Any, p: str, *, role: str) -> list[Block]:
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    need(isinstance(content, list), p, "must be a string or an array of content parts")
    out: list[Block] = []
    for i, part in enumerate(content):
        pp = f"{p}[{i}]"
        need(isinstance(part, dict), pp, "must be an object")
        t = part.get("type")
        if t in ("input_text", "output_text"):
            out.append(TextBlock(get_str(part, "text", pp, required=True) or ""))
        elif t == "refusal":
            out.append(TextBlock(get_str(part, "refusal", pp, required=True) or ""))
        elif t == "input_image":
            need(role == "user", pp, "images are only allowed in user messages and tool outputs")
            out.append(_image(part, pp))
        else:
            raise InvalidRequest(f"{pp}.type: unsupported content part type {str(t)[:60]!r} (this gateway takes "
                                 "input_text, output_text, refusal and input_image)")
    return out


class _Conversation:
    """Input items → canonical messages: consecutive assistant items (text, function calls,
    reasoning) form one assistant turn; consecutive tool outputs form one user turn."""

    def __init__(self) -> None:
        self.system: list[TextBlock] = []
        self.messages: list[Message] = []
        self.calls: set[str] = set()

    def _add(self, role: str, blocks: list[Block], *, merge: bool) -> None:
        last = self.messages[-1] if self.messages else None
        if merge and last is not None and last.role == role:
            last.content.extend(blocks)
        else:
            self.messages.append(Message(role, blocks))  # type: ignore[arg-type]

    def item(self, it: Any, p: str) -> None:
        need(isinstance(it, dict), p, "must be an object")
        t = it.get("type", "message")
        if t == "message":
            role = it.get("role")
            need(role in ("user", "assistant", "system", "developer"), f"{p}.role",
                 "must be user, assistant, system or developer")
            need("content" in it, f"{p}.content", "is required")
            blocks = _parts(it["content"], f"{p}.content", role=role)
            if role in ("system", "developer"):
                self.system.extend(b for b in blocks if isinstance(b, TextBlock))
            elif role == "assistant":
                self._add("assistant", blocks, merge=True)
            else:
                self._add("user", blocks, merge=False)
        elif t == "function_call":
            call_id = get_str(it, "call_id", p, required=True) or ""
            name = get_str(it, "name", p, required=True) or ""
            ns = get_str(it, "namespace", p)
            args = get_str(it, "arguments", p, required=True) or ""
            self.calls.add(call_id)
            self._add("assistant", [ToolUseBlock(call_id, f"{ns}{NAMESPACE_SEP}{name}" if ns else name,
                                                 request_parts.call_arguments(args))], merge=True)
        elif t == "function_call_output":
            call_id = get_str(it, "call_id", p, required=True) or ""
            need(call_id in self.calls, f"{p}.call_id",
                 f"{call_id[:80]!r} does not match the call_id of an earlier function_call item")
            need("output" in it, f"{p}.output", "is required")
            request_parts.add_tool_result(self.messages, call_id, _parts(it["output"], f"{p}.output", role="user"))
        elif t == "reasoning":
            enc = get_str(it, "encrypted_content", p)
            texts = []
            for key, kind in (("content", "reasoning_text"), ("summary", "summary_text")):
                for j, s in enumerate(get_list(it, key, p) or []):
                    need(isinstance(s, dict) and s.get("type") == kind and isinstance(s.get("text"), str),
                         f"{p}.{key}[{j}]", f"must be a {kind} part with a string `text`")
                    texts.append(s["text"])
                if texts:  # the full reasoning text when given, else its summary
                    break
            if enc is not None and enc.startswith(REDACTED_PREFIX):
                self._add("assistant", [RedactedThinkingBlock(enc[len(REDACTED_PREFIX):])], merge=True)
            elif texts or enc:
                self._add("assistant", [ThinkingBlock("\n\n".join(texts), enc)], merge=True)
        elif t == "item_reference":
            raise ResponsesInvalid(f"{p}.type: item_reference is not supported by this gateway; send the item "
                                   "itself or use previous_response_id", param=p)
        else:
            raise InvalidRequest(f"{p}.type: unsupported input item type {str(t)[:60]!r} (this gateway takes "
                                 "message, function_call, function_call_output and reasoning items)")


def decode_items(items: list[Any], path: str = "input") -> _Conversation:
    conv = _Conversation()
    for i, it in enumerate(items):
        conv.item(it, f"{path}[{i}]")
    return conv


def _function_tool(t: dict[str, Any], p: str, prefix: str = "") -> Tool:
    params = request_parts.function_parameters(t, p)
    name = get_str(t, "name", p, required=True) or ""
    need(bool(name), f"{p}.name", "must not be empty")
    get_bool(t, "strict", p)
    return Tool(prefix + name, get_str(t, "description", p), params)


def decode_tools(tools: list[Any] | None) -> tuple[list[Tool], list[dict[str, Any]]]:
    """Canonical tools and the definitions the response echoes (hosted tools are left out)."""
    out: list[Tool] = []
    echo: list[dict[str, Any]] = []
    for i, t in enumerate(tools or []):
        p = f"tools[{i}]"
        need(isinstance(t, dict), p, "must be an object")
        tt = t.get("type")
        need(isinstance(tt, str), f"{p}.type", "is required")
        if tt == "function":
            out.append(_function_tool(t, p))
            echo.append(t)
        elif tt == "namespace":
            ns = get_str(t, "name", p, required=True) or ""
            need(bool(ns), f"{p}.name", "must not be empty")
            for j, f in enumerate(get_list(t, "tools", p) or []):
                fp = f"{p}.tools[{j}]"
                need(isinstance(f, dict), fp, "must be an object")
                if f.get("type") == "function":
                    out.append(_function_tool(f, fp, ns + NAMESPACE_SEP))
            echo.append(t)
        elif not tt.startswith(HOSTED_TOOL_PREFIXES):
            raise InvalidRequest(f"{p}.type: unknown tool type {tt[:60]!r}")
    return out, echo


def strict_schemas(tools: list[Any] | None) -> dict[str, dict[str, Any]] | None:
    """{canonical name: parameters} of the function tools the client marked `"strict": true` (the openai SDK's
    `responses.stream`/`.parse` parse those tools' arguments: wire/strict_tools.py); None without any. (The API's
    own default for an unmarked tool is strict too, but the SDK parses only the ones marked.)"""
    out: dict[str, dict[str, Any]] = {}
    for t in tools or ():
        if not isinstance(t, dict):
            continue
        fns, prefix = ([t], "") if t.get("type") == "function" else (
            (t.get("tools") or [], f"{t.get('name')}{NAMESPACE_SEP}") if t.get("type") == "namespace" else ([], ""))
        for f in fns:
            if isinstance(f, dict) and f.get("type") == "function" and f.get("strict") is True:
                params = f.get("parameters")
                out[prefix + str(f.get("name"))] = params if isinstance(params, dict) else {}
    return out or None


def _tool_choice(tc: Any, parallel: bool | None) -> ToolChoice | None:
    choice: ToolChoice | None = None
    if isinstance(tc, str):
        choice = request_parts.named_tool_choice(tc)
    elif isinstance(tc, dict):
        t = tc.get("type")
        if t == "function":
            choice = ToolChoice("tool", get_str(tc, "name", "tool_choice", required=True))
        elif t == "allowed_tools":
            mode = tc.get("mode", "auto")
            need(mode in ("auto", "required"), "tool_choice.mode", "must be auto or required")
            choice = ToolChoice("any" if mode == "required" else "auto")
        else:
            raise InvalidRequest("tool_choice.type: only function and allowed_tools choices are supported")
    elif tc is not None:
        raise InvalidRequest("tool_choice: must be a string or an object")
    return request_parts.with_parallel(choice, parallel)


def _text_format(text: dict[str, Any] | None) -> ResponseFormat | None:
    if text is None:
        return None
    fmt = get_dict(text, "format", "text")
    if fmt is None:
        return None
    t = fmt.get("type")
    if t == "json_schema":
        schema = get_dict(fmt, "schema", "text.format")
        need(schema is not None, "text.format.schema", "is required for type json_schema")
        strict = get_bool(fmt, "strict", "text.format")
        return ResponseFormat("json_schema", schema, get_str(fmt, "name", "text.format"), strict)
    need(t in ("text", "json_object"), "text.format.type", "must be text, json_object or json_schema")
    return ResponseFormat(t)  # type: ignore[arg-type]


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if get_bool(body, "background"):
        raise ResponsesInvalid("background: background responses are not supported by this gateway",
                               param="background")
    for k in ("conversation", "prompt"):
        if body.get(k) is not None:
            raise ResponsesInvalid(f"{k}: this gateway does not keep OpenAI {k}s; send the input itself"
                                   + (" (previous_response_id works for responses this gateway stored)"
                                      if k == "conversation" else ""), param=k)
    trunc = body.get("truncation")
    need(trunc is None or trunc in ("auto", "disabled"), "truncation", "must be auto or disabled")
    get_bool(body, "store")
    get_list(body, "include")
    get_dict(body, "stream_options")
    for k in ("safety_identifier", "prompt_cache_key", "service_tier"):
        get_str(body, k, "")
    get_int(body, "max_tool_calls", minimum=1)


def decode_request(body: Any, headers: dict[str, str], history: list[Any] | None = None) -> Request:
    """The canonical request; `history` is the stored conversation `previous_response_id` named."""
    need(isinstance(body, dict), "body", "must be a JSON object")
    model = get_str(body, "model", "", required=True) or ""
    inp = body.get("input")
    need(inp is not None, "input", "is required (a string or an array of input items)")
    if isinstance(inp, str):
        items: list[Any] = [{"type": "message", "role": "user", "content": inp}]
    else:
        need(isinstance(inp, list), "input", "must be a string or an array of input items")
        items = inp
    _refuse_unsupported(body)
    conv = decode_items(history or [], "previous_response") if history else _Conversation()
    if history:
        conv.system = []  # instructions and developer messages of earlier turns are not carried over
    for i, it in enumerate(items):
        conv.item(it, f"input[{i}]")
    need(bool(conv.messages), "input", "must contain at least one user, assistant or function_call_output item")
    instructions = get_str(body, "instructions", "")
    system = ([TextBlock(instructions)] if instructions else []) + conv.system
    tools, _ = decode_tools(get_list(body, "tools"))
    strict = strict_schemas(body.get("tools")) if tools else None
    reasoning = get_dict(body, "reasoning")
    effort = None
    if reasoning is not None:
        effort = get_str(reasoning, "effort", "reasoning")
        need(effort is None or effort in _EFFORTS, "reasoning.effort", "must be one of " + ", ".join(_EFFORTS))
        get_str(reasoning, "summary", "reasoning")
    top_logprobs = get_int(body, "top_logprobs", minimum=0, maximum=20)
    return Request(
        model=model,
        messages=conv.messages,
        system=system,
        max_tokens=get_int(body, "max_output_tokens", minimum=1),
        temperature=get_num(body, "temperature", lo=0, hi=2),
        top_p=get_num(body, "top_p", lo=0, hi=1),
        stream=get_bool(body, "stream") or False,
        tools=tools,
        strict_tools=strict,
        tool_choice=_tool_choice(body.get("tool_choice"), get_bool(body, "parallel_tool_calls")),
        response_format=_text_format(get_dict(body, "text")),
        logprobs=bool(top_logprobs),
        top_logprobs=top_logprobs or None,
        reasoning_effort=effort if effort not in (None, "none") else None,
        metadata=get_dict(body, "metadata") or {},
        user=get_str(body, "user", ""),
        source_format=FORMAT,
        source_body=None,  # no upstream speaks Responses: always encoded from the canonical fields
        headers=headers,
    )


# ============================================================================ encode


def output_items(blocks: list[Block], namespaces: frozenset[str]) -> list[dict[str, Any]]:
    """Canonical content → Responses output items (consecutive text blocks share one message)."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            part = {"type": "output_text", "text": b.text, "annotations": [], "logprobs": []}
            last = out[-1] if out else None
            if last is not None and last["type"] == "message":
                last["content"].append(part)
            else:
                out.append(message_item(item_id("msg_"), [part], "completed"))
        elif isinstance(b, ThinkingBlock):
            out.append(reasoning_item(item_id("rs_"), b.thinking, b.signature, "completed"))
        elif isinstance(b, RedactedThinkingBlock):
            out.append(reasoning_item(item_id("rs_"), None, REDACTED_PREFIX + b.data, "completed"))
        elif isinstance(b, ToolUseBlock) and not b.server:
            out.append(call_item(item_id("fc_"), b.id, b.name, orjson.dumps(b.input).decode(), "completed",
                                 namespaces))
    return out


def message_item(iid: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": iid, "type": "message", "role": "assistant", "status": status, "content": parts}


def reasoning_item(iid: str, text: str | None, encrypted: str | None, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {"id": iid, "type": "reasoning", "summary": [], "status": status}
    if text is not None:
        item["content"] = [{"type": "reasoning_text", "text": text}]
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def call_item(iid: str, call_id: str, name: str, arguments: str, status: str,
              namespaces: frozenset[str]) -> dict[str, Any]:
    item = {"id": iid, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}
    ns, sep, inner = name.partition(NAMESPACE_SEP)
    if sep and ns in namespaces:
        item["name"], item["namespace"] = inner, ns
    return item


def usage_out(u: Usage) -> dict[str, Any]:
    inp = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {"input_tokens": inp,
            "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
            "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": inp + u.output_tokens}


def _tool_choice_echo(tc: Any) -> Any:
    return tc if tc is not None else "auto"


class Exchange:
    """One Responses request and its answer: decode with the store's history, encode the response
    object (echoing the request's settings) and save it when the client asked to store it."""

    FORMAT: WireFormat = FORMAT

    def __init__(self, store: Any, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.body: dict[str, Any] = {}
        self.items: list[Any] = []  # the conversation so far, as input items (for the store)
        self.namespaces: frozenset[str] = frozenset()
        self.echo_tools: list[dict[str, Any]] = []
        self.id = response_id()
        self.created_at = int(time.time())

    # ------------------------------------------------------------ the codec interface asgi uses

    def decode_request(self, body: Any, headers: dict[str, str]) -> Request:
        history: list[Any] | None = None
        if isinstance(body, dict) and body.get("previous_response_id") is not None:
            prev = get_str(body, "previous_response_id", "")
            history = self.store.get(self.owner, prev)
            if history is None:
                raise ResponsesInvalid(f"Previous response with id {str(prev)[:100]!r} not found.",
                                       param="previous_response_id", code="previous_response_not_found")
        req = decode_request(body, headers, history)
        self.body = body
        _, self.echo_tools = decode_tools(body.get("tools"))
        self.namespaces = frozenset(t["name"] for t in self.echo_tools if t.get("type") == "namespace")
        inp = body["input"]
        new = [{"type": "message", "role": "user", "content": inp}] if isinstance(inp, str) else inp
        # Stored without system/developer messages: instructions are not carried over to the next turn.
        self.items = [*(history or []), *(it for it in new if not (
            isinstance(it, dict) and it.get("type", "message") == "message"
            and it.get("role") in ("system", "developer")))]
        return req

    def encode_response(self, resp: Response, model: str) -> bytes:
        obj = self.response_object("completed", model, output_items(resp.content, self.namespaces), resp.usage,
                                   resp.stop_reason)
        self.save(obj)
        return orjson.dumps(obj)

    def StreamEncoder(self, model: str, request: Request) -> Any:  # noqa: N802 (the codec modules' name)
        from tierwise.wire.openai_responses_stream import ResponsesStreamEncoder
        return ResponsesStreamEncoder(self, model)

    @staticmethod
    def encode_error(err: TierwiseError) -> bytes:
        return encode_error(err)

    # ------------------------------------------------------------ response objects and the store

    def response_object(self, status: str, model: str, output: list[dict[str, Any]], usage: Usage | None,
                        stop_reason: str | None = None) -> dict[str, Any]:
        b = self.body
        incomplete = None
        if status == "completed" and stop_reason in _STOP_STATUS:
            status, reason = _STOP_STATUS[stop_reason]
            incomplete = {"reason": reason}
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "background": False, "error": None, "incomplete_details": incomplete,
            "instructions": b.get("instructions"), "max_output_tokens": b.get("max_output_tokens"),
            "model": model, "output": output, "parallel_tool_calls": b.get("parallel_tool_calls") is not False,
            "previous_response_id": b.get("previous_response_id"),
            "reasoning": b.get("reasoning") or {"effort": None, "summary": None},
            "store": b.get("store") is not False, "temperature": b.get("temperature"),
            "text": b.get("text") or {"format": {"type": "text"}},
            "tool_choice": _tool_choice_echo(b.get("tool_choice")), "tools": self.echo_tools,
            "top_p": b.get("top_p"), "truncation": b.get("truncation") or "disabled",
            "usage": usage_out(usage) if usage is not None else None,
            "user": b.get("user"), "metadata": b.get("metadata") or {},
        }

    def save(self, obj: dict[str, Any]) -> None:
        if self.body.get("store") is False or obj["status"] not in ("completed", "incomplete"):
            return
        # What a later turn needs: the conversation so far plus this answer, as input items.
        self.store.put(self.owner, self.id, [*self.items, *obj["output"]])


def error_object(err: TierwiseError) -> dict[str, Any]:
    # The same vocabulary as Chat Completions (openai_chat/response.py error_object: types, codes, the context
    # overflow shape), plus the `param` and `code` this codec's own errors name.
    out = chat_error_object(err)
    body = out["error"]
    if body.get("param") is None:
        body["param"] = getattr(err, "param", None)
    code = getattr(err, "code", None)
    if body.get("code") is None and code is not None:
        body["code"] = code
    return out


def encode_error(err: TierwiseError) -> bytes:
    return orjson.dumps(error_object(err))
