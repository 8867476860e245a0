"""The OpenAPI schema of `POST /v1/responses`: what wire/openai_responses.decode_request accepts.

Kept beside openapi.py so the Responses codec and its schema are read side by side. Item and
part schemas follow the codec's checks one for one: messages (input_text, output_text, refusal,
input_image parts; images only from the user), function_call, function_call_output (must answer an
earlier function_call: said in prose), reasoning; function and namespace tools, hosted tool types
(accepted and left out); `background`, `conversation` and `prompt` refused.
"""

from __future__ import annotations

from typing import Any

from tierwise.server.openapi import _BOOL, _IMAGE_URL, _NBOOL, _NSTR, _NULL, _OBJ, _STR, _obj
from tierwise.wire.openai_responses import HOSTED_TOOL_PREFIXES

_NOBJ = {"type": ["object", "null"]}
_TEXT = _obj(["type", "text"], type={"enum": ["input_text", "output_text"]}, text=_STR)
_REFUSAL = _obj(["type", "refusal"], type={"const": "refusal"}, refusal=_STR)
_IMAGE = {**_obj(["type", "image_url"], type={"const": "input_image"}, image_url=_IMAGE_URL, detail=_NSTR,
                 file_id=_NULL), "description": "a URL or a data: URL; file ids are not supported"}


def _content(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [_STR, {"type": "array", "items": {"anyOf": list(parts)}}]}


_MESSAGE_TYPE = {"const": "message"}
_ITEM = {"anyOf": [
    _obj(["role", "content"], type=_MESSAGE_TYPE, role={"const": "user"}, content=_content(_TEXT, _REFUSAL, _IMAGE)),
    _obj(["role", "content"], type=_MESSAGE_TYPE, role={"enum": ["assistant", "system", "developer"]},
         content=_content(_TEXT, _REFUSAL)),
    _obj(["type", "call_id", "name", "arguments"], type={"const": "function_call"}, call_id=_STR, name=_STR,
         arguments={"type": "string", "description": "normally a JSON object"}, namespace=_NSTR),
    {**_obj(["type", "call_id", "output"], type={"const": "function_call_output"}, call_id=_STR,
            output=_content(_TEXT, _REFUSAL, _IMAGE)),
     "description": "call_id must be the call_id of an earlier function_call item"},
    _obj(["type"], type={"const": "reasoning"}, encrypted_content=_NSTR,
         summary={"anyOf": [{"type": "array", "items": _obj(["type", "text"], type={"const": "summary_text"},
                                                             text=_STR)}, _NULL]},
         content={"anyOf": [{"type": "array", "items": _obj(["type", "text"], type={"const": "reasoning_text"},
                                                             text=_STR)}, _NULL]}),
]}

_FUNCTION = _obj(["type", "name"], type={"const": "function"}, name={"type": "string", "minLength": 1},
                 description=_NSTR, parameters=_NOBJ, strict=_NBOOL)
_TOOL = {"anyOf": [
    _FUNCTION,
    _obj(["type", "name"], type={"const": "namespace"}, name={"type": "string", "minLength": 1}, description=_NSTR,
         tools={"anyOf": [{"type": "array", "items": {"anyOf": [
             _FUNCTION, {**_obj(["type"], type={"not": {"const": "function"}})}]}}, _NULL]}),
    {**_obj(["type"], type={"type": "string", "pattern": "^(" + "|".join(HOSTED_TOOL_PREFIXES) + ")"}),
     "description": "a tool the provider would run itself (web search, files, code, MCP): accepted and left "
                    "out, since the upstream models tierwise serves cannot run it"},
]}

RESPONSES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "description": "a route or model name from tierwise.yaml"},
        "input": {"anyOf": [_STR, {"type": "array", "items": _ITEM}],
                  "description": "with no user, assistant or function-call item the request is refused unless "
                                 "previous_response_id supplies the conversation"},
        "instructions": _STR,
        "previous_response_id": {"type": "string",
                                 "description": "a response this gateway stored for the same client key"},
        "store": _BOOL,
        "stream": _BOOL,
        "tools": {"type": "array", "items": _TOOL},
        "tool_choice": {"anyOf": [
            {"enum": ["auto", "none", "required"]},
            _obj(["type", "name"], type={"const": "function"}, name=_STR),
            _obj(["type"], type={"const": "allowed_tools"}, mode={"enum": ["auto", "required"]})]},
        "parallel_tool_calls": _BOOL,
        "max_output_tokens": {"type": "integer", "minimum": 1},
        "max_tool_calls": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "text": _obj([], format={"anyOf": [
            _obj(["type"], type={"enum": ["text", "json_object"]}),
            _obj(["type", "schema"], type={"const": "json_schema"}, schema=_OBJ, name=_NSTR, strict=_NBOOL),
            _NULL]}),
        "reasoning": _obj([], effort={"anyOf": [
            {"enum": ["none", "minimal", "low", "medium", "high", "xhigh"]}, _NULL]}, summary=_NSTR),
        "truncation": {"enum": ["auto", "disabled"]},
        "include": {"type": "array"},
        "stream_options": _OBJ,
        "metadata": _OBJ,
        "user": _STR,
        "safety_identifier": _STR,
        "prompt_cache_key": _STR,
        "service_tier": _STR,
        "background": {"const": False, "description": "background responses are not supported"},
        "conversation": {**_NULL, "description": "not supported: send the input, or previous_response_id"},
        "prompt": {**_NULL, "description": "stored prompts are not supported"},
    },
}
