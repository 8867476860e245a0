"""Hypothesis strategies for the JSON Schema subset the gateway's OpenAPI document uses.

hypothesis-jsonschema handles all of JSON Schema but spends ~0.3 s per document on these
request schemas, which makes a 10,000-request run take hours; the published schemas use only
type, properties, required, items, minItems, minLength, enum, const, oneOf/anyOf, minimum and maximum,
string patterns, `not const`, and `false` for fields that must be absent,
so a direct translation is enough and thousands of times faster.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_TEXT = st.text(max_size=40)
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": _TEXT,
    "boolean": st.booleans(),
    "null": st.none(),
}


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if integer:
        return st.integers(min_value=None if lo is None else int(lo), max_value=None if hi is None else int(hi))
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = {k: v for k, v in (schema.get("properties") or {}).items() if v is not False}  # False: must be absent
    required = [k for k in schema.get("required", []) if k in props]
    optional = {k: v for k, v in props.items() if k not in required}
    return st.fixed_dictionaries(
        {k: from_schema(props[k]) for k in required},
        optional={k: from_schema(v) for k, v in optional.items()},
    )


def from_schema(schema: dict[str, Any] | bool) -> st.SearchStrategy[Any]:
    """A strategy for documents valid under `schema` (for the subset above)."""
    if schema is True or schema == {}:
        return st.none() | st.booleans() | st.integers() | _TEXT
    if schema is False:
        return st.nothing()
    assert isinstance(schema, dict)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema(s) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "object" or (kind is None and "properties" in schema):
        return _object(schema)
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(items, min_size=int(schema.get("minItems", 0)), max_size=max(3, int(schema.get("minItems", 0))))
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "string" and "pattern" in schema:
        return st.from_regex(schema["pattern"])
    if kind == "string" and "not" in schema:
        barred = schema["not"]
        return _TEXT.filter(lambda v: v != barred.get("const"))
    if "allOf" in schema:  # the subset uses allOf only as [not const, anyOf patterns] over strings
        return from_schema({"type": "string", "anyOf": schema["allOf"][1]["anyOf"]})
    if kind == "string" and "minLength" in schema:
        return st.text(min_size=int(schema["minLength"]), max_size=max(40, int(schema["minLength"])))
    if kind in _SCALARS:
        return _SCALARS[kind]
    return from_schema(True)
