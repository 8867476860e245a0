"""The OpenAPI 3.1 description of the gateway's endpoints, served at `GET /openapi.json`.

It describes what the gateway accepts (the subset of the OpenAI and Anthropic request
schemas it understands, with the fields it validates) and the error schema of each API, so
clients and fuzzers (schemathesis, hypothesis) can be pointed at it.
"""

from __future__ import annotations

import re
from typing import Any

from tierwise import __version__
from tierwise.wire._check import IMAGE_URL_PATTERN, INT_MAX, MAX_STOP

_STR = {"type": "string"}
_IMAGE_URL = {"type": "string", "pattern": IMAGE_URL_PATTERN}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_OBJ = {"type": "object"}
_NULL = {"type": "null"}
_NBOOL = {"type": ["boolean", "null"]}
_NSTR = {"type": ["string", "null"]}

def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _one_of_types(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": {"anyOf": list(blocks)}}


# ---------------------------------------------------------------------------- OpenAI Chat Completions
# One schema per message role, as openai_chat.decode_request checks them.

_O_TEXT = _obj(["type", "text"], type={"const": "text"}, text=_STR)
_O_REFUSAL = _obj(["type", "refusal"], type={"const": "refusal"}, refusal=_STR)
_O_IMAGE = _obj(["type", "image_url"], type={"const": "image_url"}, image_url={"anyOf": [
    _IMAGE_URL, _obj(["url"], url=_IMAGE_URL)]})
# A file part reaches an Anthropic model only with inline data; audio reaches none.
_O_FILE = _obj(["type", "file"], type={"const": "file"}, file=_obj(["file_data"], file_data={
    "type": "string", "pattern": "^data:"}))
_O_AUDIO = _obj(["type"], type={"const": "input_audio"})
_O_OTHER = {"anyOf": [_O_FILE, _O_AUDIO]}

_OPENAI_TOOL_CALL = _obj(
    ["function"], id=_STR, type={"const": "function"},
    function=_obj(["name"], name=_STR, arguments={
        "type": "string", "description": "normally a JSON object; anything else reaches other formats as "
        "{\"value\": ...}"}))

_OPENAI_MESSAGE = {"anyOf": [
    _obj(["role"], role={"enum": ["system", "developer"]},
         content={"anyOf": [_STR, _one_of_types(_O_TEXT, _O_REFUSAL, _O_OTHER)]}),
    _obj(["role", "content"], role={"const": "user"},
         content={"anyOf": [_STR, _one_of_types(_O_TEXT, _O_REFUSAL, _O_IMAGE, _O_OTHER)]}),
    _obj(["role"], role={"const": "assistant"},
         content={"anyOf": [_STR, {"type": "null"}, _one_of_types(_O_TEXT, _O_REFUSAL, _O_OTHER)]},
         tool_calls={"anyOf": [{"type": "array", "items": _OPENAI_TOOL_CALL}, _NULL]}),
    {**_obj(["role", "tool_call_id"], role={"const": "tool"},
            content={"anyOf": [_STR, _one_of_types(_O_TEXT, _O_REFUSAL, _O_OTHER)]}, tool_call_id=_STR),
     "description": "must answer a tool call of an earlier assistant message (tool_call_id)"},
]}

CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "description": "a route or model name from tierwise.yaml"},
        "messages": {"type": "array", "minItems": 1, "items": _OPENAI_MESSAGE},
        "stream": _BOOL,
        "stream_options": {"type": "object", "properties": {"include_usage": _BOOL}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 8},
        "stop": {"anyOf": [_STR, {"type": "array", "items": _STR, "maxItems": MAX_STOP}]},
        "logprobs": _BOOL,
        "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "tools": {"type": "array", "items": _obj(["function"], type={"const": "function"}, function=_obj(
            ["name"], name=_STR, description=_NSTR, parameters=_OBJ))},
        "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]},
                                  _obj(["function"], type={"const": "function"}, function=_obj(["name"], name=_STR)),
                                  _obj(["type", "allowed_tools"], type={"const": "allowed_tools"}, allowed_tools=_obj(
                                      ["tools"], mode={"enum": ["auto", "required"]}, tools={
                                          "type": "array", "items": _obj(["function"], function=_obj(["name"],
                                                                                                   name=_STR))}))]},
        "parallel_tool_calls": _BOOL,
        "response_format": {"anyOf": [
            _obj(["type"], type={"enum": ["text", "json_object"]}),
            _obj(["type", "json_schema"], type={"const": "json_schema"},
                 json_schema=_obj([], name=_STR, schema=_OBJ, strict=_BOOL)),
        ]},
        "reasoning_effort": _STR,
        "metadata": _OBJ,
        "user": _STR,
    },
}

# ---------------------------------------------------------------------------- Anthropic Messages
# Block schemas as anthropic_messages.decode_request checks them; tool_use only from the
# assistant, tool_result only from the user.

_A_TEXT = _obj(["type", "text"], type={"const": "text"}, text=_STR)
_A_IMAGE = _obj(["type", "source"], type={"const": "image"}, source={"anyOf": [
    _obj(["type", "media_type", "data"], type={"const": "base64"}, media_type=_STR, data=_STR),
    _obj(["type", "url"], type={"const": "url"}, url=_IMAGE_URL)]})
_A_OPAQUE = _obj(["type"], type={"enum": ["document", "search_result", "container_upload", "mcp_tool_use",
                                          "mcp_tool_result", "web_search_tool_result"]})
_A_THINKING = _obj(["type", "thinking"], type={"const": "thinking"}, thinking=_STR, signature=_NSTR)
_A_REDACTED = _obj(["type", "data"], type={"const": "redacted_thinking"}, data=_STR)
_A_TOOL_USE = _obj(["type", "id", "name"], type={"enum": ["tool_use", "server_tool_use"]}, id=_STR, name=_STR,
                   input=_OBJ)
_A_TOOL_RESULT = {**_obj(["type", "tool_use_id"], type={"const": "tool_result"}, tool_use_id=_STR,
                         content={"anyOf": [_STR, _NULL, _one_of_types(_A_TEXT, _A_IMAGE, _A_OPAQUE)]},
                         is_error=_NBOOL),
                  "description": "must answer a tool_use block of the previous assistant message"}
_A_SYSTEM = {"anyOf": [_STR, {"type": "array", "items": _A_TEXT}]}

_ANTHROPIC_MESSAGE = {"anyOf": [
    _obj(["role", "content"], role={"const": "user"}, content={"anyOf": [_STR, _one_of_types(
        _A_TEXT, _A_IMAGE, _A_OPAQUE, _A_THINKING, _A_REDACTED, _A_TOOL_RESULT)]}),
    _obj(["role", "content"], role={"const": "assistant"}, content={"anyOf": [_STR, _one_of_types(
        _A_TEXT, _A_IMAGE, _A_OPAQUE, _A_THINKING, _A_REDACTED, _A_TOOL_USE)]}),
    {**_obj(["role", "content"], role={"const": "system"}, content=_A_SYSTEM),
     "description": "a system message mid-conversation (Claude Code sends them); joins `system`"},
]}

MESSAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string", "description": "a route or model name from tierwise.yaml"},
        "max_tokens": {"type": "integer", "minimum": 1,
                       "description": "with thinking enabled, greater than thinking.budget_tokens"},
        "messages": {"type": "array", "minItems": 1, "items": _ANTHROPIC_MESSAGE},
        "system": _A_SYSTEM,
        "stream": _BOOL,
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": _NUM,
        "top_k": {"type": "integer", "minimum": 0},
        "stop_sequences": {"type": "array", "items": _STR, "maxItems": MAX_STOP},
        "tools": {"type": "array", "items": {"anyOf": [
            _obj(["name", "input_schema"], type={"const": "custom"}, name=_STR, description=_NSTR,
                 input_schema=_OBJ),
            {**_obj(["type"], type={"type": "string", "not": {"const": "custom"}}, name=_STR),
             "description": "a server tool: only the types server.forwarding.server_tools allows"},
        ]}},
        "tool_choice": {"anyOf": [
            _obj(["type"], type={"enum": ["auto", "any", "none"]}, disable_parallel_tool_use=_NBOOL),
            _obj(["type", "name"], type={"const": "tool"}, name=_STR, disable_parallel_tool_use=_NBOOL)]},
        "thinking": {"anyOf": [
            _obj(["type", "budget_tokens"], type={"const": "enabled"},
                 budget_tokens={"type": "integer", "minimum": 1024, "maximum": INT_MAX - 1}),
            _obj(["type"], type={"enum": ["disabled", "adaptive"]}),
        ]},
        "metadata": _OBJ,
    },
}

COUNT_TOKENS_REQUEST: dict[str, Any] = {
    **MESSAGES_REQUEST,
    "required": ["model", "messages"],
}

EMBEDDINGS_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": _STR,
        "input": {"anyOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]},
        "encoding_format": {"enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1, "maximum": 3072,
                       "description": "at most the model's own size (the upstream decides; 3072 for OpenAI's largest)"},
    },
}

OPENAI_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type"],
    "properties": {"message": _STR, "type": _STR, "code": {"type": ["string", "null"]},
                   "param": {"type": ["string", "null"]}}}}}
ANTHROPIC_ERROR = {"type": "object", "required": ["type", "error"], "properties": {
    "type": {"const": "error"},
    "error": {"type": "object", "required": ["type", "message"], "properties": {"type": _STR, "message": _STR}}}}


def _post(summary: str, schema: dict[str, Any], error: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": _OBJ}}
    if stream:
        # one schema per event (how schemathesis and OpenAPI 3.2 `itemSchema` read a stream)
        ok["text/event-stream"] = {"schema": _obj([], event=_STR, data=_STR, id=_STR)}
    errors = {"application/json": {"schema": error}}
    return {"post": {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {
            "200": {"description": "the answer (or an SSE stream when `stream` is true)", "content": ok},
            "4XX": {"description": "rejected request, in this API's error schema", "content": errors},
            "5XX": {"description": "every upstream failed, in this API's error schema", "content": errors},
        },
    }}


def _get(summary: str, error: dict[str, Any] | None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "ok", "content": {"application/json": {"schema": _OBJ}}}}
    if error is not None:
        responses["4XX"] = {"description": "rejected request", "content": {"application/json": {"schema": error}}}
    return {"get": {"summary": summary, "responses": responses}}


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "a gateway key (server.api_keys_env)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
               "description": "a gateway key, the way Anthropic clients send it"},
}


def _glob_regex(glob: str) -> str:
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob) + "$"


def model_schema(names: list[str], patterns: list[str], *, any_name: bool) -> dict[str, Any]:
    """`model` as this gateway's config allows it: its routes and models, names its pattern routes
    match, or any string when a default route catches the rest."""
    if any_name:
        return {"type": "string", "description": "a route or model name; others go to the default route"}
    alts: list[dict[str, Any]] = [{"enum": sorted(names)}] if names else []
    alts += [{"type": "string", "pattern": _glob_regex(p)} for p in patterns if "[" not in p]
    return {"anyOf": alts} if alts else {"enum": [""]}


def _nullable_optionals(schema: dict[str, Any]) -> dict[str, Any]:
    """Optional top-level fields may be null: the codecs read null as absent, as both APIs do."""
    req = set(schema.get("required", []))
    props = {k: (v if k in req else {"anyOf": [v, _NULL]}) for k, v in schema["properties"].items()}
    return {**schema, "properties": props}

FEEDBACK_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "rating"],
    "additionalProperties": False,
    "description": "`thumbs` (up/down) may stand in place of `rating`",
    "properties": {
        "request_id": {"type": "string", "pattern": r"^[A-Za-z0-9_\-.:]{1,128}$",
                       "description": "the x-tierwise-request-id of an answer"},
        "rating": {"enum": ["good", "acceptable", "poor", "up", "down", "thumbs_up", "thumbs_down"]},
        "thumbs": {"anyOf": [{"enum": ["up", "down"]}, _BOOL]},
        "reason": {"type": ["string", "null"], "maxLength": 2000},
    },
}

CACHE_INVALIDATE_REQUEST = {**_obj([], route={"anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, _NULL]},
                                   tenant={"anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, _NULL]}),
                            "additionalProperties": False,
                            "description": "a gateway key drops only its own tenant's entries (`tenant`, if given, "
                                           "must be its own); an admin key any"}

APPROVAL_DECISION = _obj(["id", "decision"], id=_STR, decision={"enum": ["approve", "reject"]}, reason=_NSTR)

# Routes the document leaves out, and why (tests/fuzz/test_fuzz.py holds every other route to being in it).
UNDOCUMENTED = {
    "/chat/completions": "alias of /v1/chat/completions", "/responses": "alias of /v1/responses",
    "/responses/input_tokens": "alias of /v1/responses/input_tokens", "/models": "alias of /v1/models",
    "/": "alias of /health", "/openapi.json": "this document",
    "/metrics": "Prometheus text, not JSON", "/dashboard": "an HTML page (observability.dashboard)",
}
UNDOCUMENTED_PREFIXES = ("/dashboard/",)  # the dashboard page's own calls and files


def _with_model(schema: dict[str, Any], model: dict[str, Any] | None) -> dict[str, Any]:
    if model is None:
        return schema
    return {**schema, "properties": {**schema["properties"], "model": model}}


def _without_audio(schema: dict[str, Any]) -> dict[str, Any]:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node if v is not _O_AUDIO]
        return node
    return strip(schema)  # type: ignore[no-any-return]


def _forwarding(schema: dict[str, Any], refused: list[str], server_tools: list[str] | None) -> dict[str, Any]:
    """What server.forwarding refuses, stated in the schema: refused fields must be absent, and
    server tools take only the allowed types (None: leave the schema as it is)."""
    props = {**schema["properties"], **{f: False for f in refused}}
    if server_tools is not None and "tools" in props:
        tools = _tools_allowed(server_tools)
        props["tools"] = {"anyOf": [tools, _NULL]} if "anyOf" in props["tools"] else tools
    return {**schema, "properties": props}


def _tools_allowed(globs: list[str]) -> dict[str, Any]:
    custom = _obj(["name", "input_schema"], type={"const": "custom"}, name=_STR, description=_NSTR,
                  input_schema=_OBJ)
    kinds = [{"type": "string", "pattern": _glob_regex(g)} for g in globs if "[" not in g]
    if not kinds:
        return {"type": "array", "items": custom}
    server = _obj(["type"], type={"allOf": [{"not": {"const": "custom"}}, {"anyOf": kinds}]})
    return {"type": "array", "items": {"anyOf": [custom, server]}}


def _bounded_integers(node: Any) -> Any:
    """Every integer the codecs read is at most INT_MAX (wire/_check.py): say so."""
    if isinstance(node, dict):
        out = {k: _bounded_integers(v) for k, v in node.items()}
        if out.get("type") == "integer":
            out.setdefault("maximum", INT_MAX)
            out["maximum"] = min(out["maximum"], INT_MAX)
            out.setdefault("minimum", -INT_MAX)
        return out
    if isinstance(node, list):
        return [_bounded_integers(v) for v in node]
    return node


def document(*, auth_required: bool = True, chat_model: dict[str, Any] | None = None,
             embedding_model: dict[str, Any] | None = None, refused: dict[str, list[str]] | None = None,
             server_tools: list[str] | None = None, audio: bool = True) -> dict[str, Any]:
    """`auth_required`: the gateway has client keys; without them every operation is open.
    `chat_model` / `embedding_model`: the `model` schemas of the serving config (any string if None).
    `refused` (per format) and `server_tools`: what server.forwarding refuses and allows.
    `audio`: every deployment takes OpenAI audio parts (none on Anthropic does)."""
    from tierwise.server.openapi_responses import RESPONSES_REQUEST  # it builds on this module's vocabulary

    refused = refused or {}
    chat_request = CHAT_REQUEST if audio else _without_audio(CHAT_REQUEST)
    chat = _forwarding(_with_model(_nullable_optionals(chat_request), chat_model), refused.get("openai", []), None)
    if not audio:  # some deployment speaks Anthropic, which streams one choice only
        chat = {**chat, "anyOf": [
            {"properties": {"stream": {"not": {"const": True}}}},
            {"properties": {"n": {"anyOf": [{"type": "integer", "maximum": 1}, _NULL]}}}],
            "description": "n > 1 with stream true needs every deployment OpenAI-compatible"}
    messages = _forwarding(_with_model(_nullable_optionals(MESSAGES_REQUEST), chat_model),
                           refused.get("anthropic", []), server_tools)
    count = _forwarding(_with_model(_nullable_optionals(COUNT_TOKENS_REQUEST), chat_model),
                        refused.get("anthropic", []), server_tools)
    keyed: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    open_or_keyed: list[dict[str, list[str]]] = [{}, *keyed]  # /health says more to a key holder
    paths: dict[str, Any] = {
        "/v1/chat/completions": _post("OpenAI Chat Completions", chat, OPENAI_ERROR, stream=True),
        "/v1/messages": _post("Anthropic Messages", messages, ANTHROPIC_ERROR, stream=True),
        "/v1/responses": _post("OpenAI Responses", _with_model(_nullable_optionals(RESPONSES_REQUEST), chat_model),
                               OPENAI_ERROR, stream=True),
        "/v1/messages/count_tokens": _post("Anthropic token count", count, ANTHROPIC_ERROR, stream=False),
        "/v1/embeddings": _post("OpenAI embeddings (proxied)",
                                _with_model(_nullable_optionals(EMBEDDINGS_REQUEST), embedding_model),
                                OPENAI_ERROR, stream=False),
        "/v1/responses/input_tokens": _post(
            "OpenAI Responses input-token count (tierwise's estimate); every field optional",
            {**_with_model(_nullable_optionals(RESPONSES_REQUEST), chat_model), "required": []},
            OPENAI_ERROR, stream=False),
        "/v1/tierwise/feedback": _post("rate an answer (learning loop)", FEEDBACK_REQUEST, OPENAI_ERROR,
                                       stream=False),
        "/v1/tierwise/budgets": _get("spend and limits (a key: its own; an admin key: all)", OPENAI_ERROR),
        "/v1/tierwise/blackboard": _get("distributed mode's shared state (admin and viewer keys)", OPENAI_ERROR),
        "/v1/tierwise/cache": _get("answer cache statistics", OPENAI_ERROR),
        "/v1/tierwise/cache/invalidate": _post("drop cached answers (a key: its own tenant's)",
                                               CACHE_INVALIDATE_REQUEST, OPENAI_ERROR, stream=False),
        "/v1/tierwise/approvals": {**_get("approval gates' pending requests (admin keys)", OPENAI_ERROR),
                                   **_post("approve or reject one (admin keys)", APPROVAL_DECISION, OPENAI_ERROR,
                                           stream=False)},
        "/v1/models": _get("routes and models clients may name", OPENAI_ERROR),
        "/v1/models/{model}": _get("one of them (404 for a name this key cannot use)", OPENAI_ERROR),
        "/health": _get("liveness; each deployment's circuit-breaker state for key holders", None),
    }
    paths["/v1/models/{model}"]["get"]["parameters"] = [
        {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    if auth_required:
        paths["/health"]["get"]["security"] = open_or_keyed
    return {
        "openapi": "3.1.0",
        "info": {"title": "tierwise gateway", "version": __version__,
                 "description": "OpenAI- (Chat Completions, Responses) and Anthropic-compatible endpoints of "
                                "the tierwise gateway."},
        "components": {"securitySchemes": SECURITY_SCHEMES},
        "security": keyed if auth_required else [],
        "paths": _bounded_integers(paths),
    }
