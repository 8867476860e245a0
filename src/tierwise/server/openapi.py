"""The OpenAPI 3.1 description of the gateway's endpoints, served at `GET /openapi.json`.

It describes what the gateway accepts (the subset of the OpenAI and Anthropic request
schemas it understands, with the fields it validates) and the error schema of each API, so
clients and fuzzers (schemathesis, hypothesis) can be pointed at it.
"""

from __future__ import annotations

from typing import Any

from tierwise import __version__

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_OBJ = {"type": "object"}

_OPENAI_CONTENT = {
    "oneOf": [
        _STR,
        {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["text", "image_url"]},
            "text": _STR,
            "image_url": {"type": "object", "required": ["url"], "properties": {"url": _STR, "detail": _STR}},
        }}},
        {"type": "null"},
    ]
}

_OPENAI_TOOL_CALL = {"type": "object", "required": ["id", "type", "function"], "properties": {
    "id": _STR, "type": {"const": "function"},
    "function": {"type": "object", "required": ["name", "arguments"],
                 "properties": {"name": _STR, "arguments": _STR}},
}}

CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "description": "a route or model name from tierwise.yaml"},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role"], "properties": {
                "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                "content": _OPENAI_CONTENT,
                "name": _STR,
                "tool_calls": {"type": "array", "items": _OPENAI_TOOL_CALL},
                "tool_call_id": _STR,
            }}},
        "stream": _BOOL,
        "stream_options": {"type": "object", "properties": {"include_usage": _BOOL}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 8},
        "stop": {"oneOf": [_STR, {"type": "array", "items": _STR}]},
        "logprobs": _BOOL,
        "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type", "function"], "properties": {
            "type": {"const": "function"},
            "function": {"type": "object", "required": ["name"], "properties": {
                "name": _STR, "description": _STR, "parameters": _OBJ}},
        }}},
        "tool_choice": {"oneOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}]},
        "response_format": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["text", "json_object", "json_schema"]},
            "json_schema": {"type": "object", "properties": {"name": _STR, "schema": _OBJ, "strict": _BOOL}},
        }},
        "metadata": _OBJ,
        "user": _STR,
    },
}

_ANTHROPIC_BLOCK = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking", "document"]},
    "text": _STR,
    "source": _OBJ,
    "id": _STR, "name": _STR, "input": _OBJ,
    "tool_use_id": _STR, "content": {"oneOf": [_STR, {"type": "array", "items": _OBJ}]}, "is_error": _BOOL,
    "thinking": _STR, "signature": _STR, "data": _STR,
}}

MESSAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string", "description": "a route or model name from tierwise.yaml"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role", "content"], "properties": {
                "role": {"enum": ["user", "assistant"]},
                "content": {"oneOf": [_STR, {"type": "array", "items": _ANTHROPIC_BLOCK}]},
            }}},
        "system": {"oneOf": [_STR, {"type": "array", "items": {"type": "object", "required": ["type", "text"],
                                                                 "properties": {"type": {"const": "text"},
                                                                                "text": _STR}}}]},
        "stream": _BOOL,
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": _NUM,
        "top_k": _INT,
        "stop_sequences": {"type": "array", "items": _STR},
        "tools": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": _STR, "description": _STR, "input_schema": _OBJ, "type": _STR}}},
        "tool_choice": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["auto", "any", "tool", "none"]}, "name": _STR, "disable_parallel_tool_use": _BOOL}},
        "thinking": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["enabled", "disabled", "adaptive"]}, "budget_tokens": _INT}},
        "metadata": {"type": "object", "properties": {"user_id": _STR}},
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
        "input": {"oneOf": [_STR, {"type": "array", "items": _STR}]},
        "encoding_format": {"enum": ["float", "base64"]},
        "dimensions": _INT,
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
        ok["text/event-stream"] = {"schema": _STR}
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


def document(*, auth_required: bool = True) -> dict[str, Any]:
    """`auth_required`: the gateway has client keys; without them every operation is open."""
    keyed: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    open_or_keyed: list[dict[str, list[str]]] = [{}, *keyed]  # /health says more to a key holder
    paths: dict[str, Any] = {
        "/v1/chat/completions": _post("OpenAI Chat Completions", CHAT_REQUEST, OPENAI_ERROR, stream=True),
        "/v1/messages": _post("Anthropic Messages", MESSAGES_REQUEST, ANTHROPIC_ERROR, stream=True),
        "/v1/messages/count_tokens": _post("Anthropic token count", COUNT_TOKENS_REQUEST, ANTHROPIC_ERROR,
                                           stream=False),
        "/v1/embeddings": _post("OpenAI embeddings (proxied)", EMBEDDINGS_REQUEST, OPENAI_ERROR, stream=False),
        "/v1/models": _get("routes and models clients may name", OPENAI_ERROR),
        "/health": _get("liveness; each deployment's circuit-breaker state for key holders", None),
    }
    if auth_required:
        paths["/health"]["get"]["security"] = open_or_keyed
    return {
        "openapi": "3.1.0",
        "info": {"title": "tierwise gateway", "version": __version__,
                 "description": "OpenAI- and Anthropic-compatible endpoints of the tierwise gateway."},
        "components": {"securitySchemes": SECURITY_SCHEMES},
        "security": keyed if auth_required else [],
        "paths": paths,
    }
