"""An OpenAI client's `json_schema` response format as Anthropic's own structured output (`output_config.format`),
for a model configured `structured_output: native` (Claude Sonnet 4.5, Opus 4.1, Haiku 4.5 and later constrain
their sampling to the schema; older Claude models and other Anthropic-format servers refuse or ignore the field,
so it is opt-in per model, and the default stays the instruction in the system prompt).

Anthropic accepts a subset of JSON Schema: no numeric bounds (`minimum`, `multipleOf`, …), no string lengths, no
`pattern` it cannot compile, `minItems` only 0 or 1, objects closed (`additionalProperties: false`), `anyOf` for
`oneOf`, a list of string formats; a schema outside it is a 400. So the schema sent is the client's cut to that
subset (what is cut only loosens it: every answer of the client's schema still fits), and when anything was cut the
instruction with the whole schema goes too, so the model still reads the bounds. A schema with an object the client
left open to extras (`additionalProperties` true, a schema, or absent) goes as the instruction only: closing it
would lose the extras. The gateway's check (wire/strict_output.py) holds the answer to the client's whole schema.
"""

from __future__ import annotations

from typing import Any

from tierwise.canonical import Request

FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"})
_KEPT = frozenset({"type", "description", "title", "enum", "const", "required", "$ref", "default"})
_NESTED_MAPS = ("properties", "$defs", "definitions")
_NESTED_LISTS = ("anyOf", "allOf")
_MAX_DEPTH = 64  # the request body's own depth bound is lower; a schema deeper than this is not sent natively


def native_format(req: Request) -> tuple[dict[str, Any], bool] | None:
    """(`output_config.format`, whether anything of the client's schema was cut), or None when the request asks
    for no schema (`json_object`: Anthropic has no such mode) or the schema cannot be sent."""
    rf = req.response_format
    if rf is None or rf.type != "json_schema" or not rf.schema:
        return None
    cut: list[str] = []
    schema = _subset(rf.schema, cut, 0)
    if schema is None:
        return None
    return {"type": "json_schema", "schema": schema}, bool(cut)


def _subset(node: Any, cut: list[str], depth: int) -> dict[str, Any] | None:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return None
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _KEPT:
            out[k] = v
        elif k in _NESTED_MAPS and isinstance(v, dict):
            named = {name: _subset(s, cut, depth + 1) for name, s in v.items()}
            if any(s is None for s in named.values()):
                return None
            out[k] = named
        elif (k in _NESTED_LISTS or k == "oneOf") and isinstance(v, list):
            subs = [_subset(s, cut, depth + 1) for s in v]
            if any(s is None for s in subs):
                return None
            out["anyOf" if k == "oneOf" else k] = subs  # oneOf's "exactly one" is the check's to hold
        elif k == "items" and isinstance(v, dict):
            sub = _subset(v, cut, depth + 1)
            if sub is None:
                return None
            out[k] = sub
        elif k == "format" and v in FORMATS:
            out[k] = v
        elif k == "minItems" and v in (0, 1):
            out[k] = v
        elif k == "additionalProperties":
            if v is not False:
                # Extras allowed (a map `dict[str, int]`, `true`, `{}`): closed, the model could not write them
                return None
        elif k == "patternProperties":
            return None  # its keys are its content: closed, the object could only be `{}`
        elif k not in ("$schema", "$id", "examples"):
            cut.append(k)
    t = out.get("type")
    if t == "object" or (isinstance(t, list) and "object" in t) or "properties" in out:
        if "additionalProperties" not in node:
            # JSON Schema's default is open: a free map (`{"type": "object"}`, review26b) or properties plus
            # extras (small26); closing it would drop the extras the client's schema allows
            return None
        out["additionalProperties"] = False  # Anthropic wants objects closed; the client's is closed already
    return out
