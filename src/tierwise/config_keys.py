"""The closest valid key for an unknown one in tierwise.yaml (`contex_window` -> `context_window`).

A validation error's location is walked through the pydantic model that was validated to the model
holding the unknown key; its field names (and aliases) are the candidates."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel


def _members(tp: Any) -> list[Any]:
    """The types a value annotated `tp` may have (Optional, unions and Annotated unwrapped)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for a in typing.get_args(tp) for m in _members(a)]
    return [tp]


def _step(tp: Any, part: Any) -> list[Any]:
    """The types at `part` (a field name, dict key, list index or union tag) inside a value of type `tp`."""
    out: list[Any] = []
    for m in _members(tp):
        origin = typing.get_origin(m)
        if isinstance(m, type) and issubclass(m, BaseModel):
            fields = m.model_fields
            if isinstance(part, str):
                if part in fields:
                    out.append(fields[part].annotation)
                else:
                    out.extend(f.annotation for f in fields.values() if f.alias == part)
        elif origin in (dict, typing.Mapping) or origin is getattr(typing, "Dict", None):
            args = typing.get_args(m)
            if len(args) == 2:
                out.append(args[1])
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            args = [a for a in typing.get_args(m) if a is not Ellipsis]
            out.extend(args[:1] if origin is not tuple else args[part: part + 1] or args[:1])
    if not out and isinstance(part, str):  # a union member's tag in the location (pydantic names the member)
        out = [m for m in _members(tp) if getattr(m, "__name__", None) == part or
               (isinstance(m, type) and part.endswith(f"[{m.__name__}]"))]
        if out:
            return out
    return out


def _keys(tp: Any) -> set[str]:
    keys: set[str] = set()
    for m in _members(tp):
        if isinstance(m, type) and issubclass(m, BaseModel):
            for name, f in m.model_fields.items():
                keys.add(f.alias or name)
    return keys


def closest_key(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The valid key nearest the unknown one at `loc` (its last part), or None."""
    if model is None or not loc or not isinstance(loc[-1], str):
        return None
    types_: list[Any] = [model]
    for part in loc[:-1]:
        nxt: list[Any] = []
        for t in types_:
            nxt.extend(_step(t, part))
        if not nxt:
            return None
        types_ = nxt
    candidates: set[str] = set()
    for t in types_:
        candidates |= _keys(t)
    match = difflib.get_close_matches(loc[-1], sorted(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_message(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    """"unknown key", with the closest valid key when there is one."""
    near = closest_key(model, loc)
    return "unknown key" + (f" (did you mean `{near}`?)" if near else "")
