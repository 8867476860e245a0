"""Values that cross between the checker's sandbox and the answer's (tierwise.verifiers.checker):
tagged JSON of plain data only, bounded in depth and size, so neither side ever holds an object
the other made. Standard library only: this file is also copied into both sandboxes and imported
there as `tierwise_crossing`.

    None, bool, str      -> themselves
    int                  -> {"i": "<decimal>"}   (exact, any size Python prints)
    float                -> {"f": "<repr>"}       (nan, inf, -inf, -0.0 kept)
    bytes                -> {"b": "<base64>"}
    list / tuple         -> [..] / {"t": [..]}
    set / frozenset      -> {"s": [..]} / {"fs": [..]}
    dict                 -> {"d": [[key, value], ..]}

Exact types only: anything else (a generator, an instance, a function, a subclass of a builtin)
raises CrossingError("value of type X cannot cross ...").
"""

from __future__ import annotations

import base64
import json
from typing import Any

MAX_DEPTH = 50
MAX_ITEMS = 100_000
MAX_LINE = 1_000_000  # bytes of one JSON line, either way


_TAGS: dict[type, str] = {tuple: "t", set: "s", frozenset: "fs"}


class CrossingError(Exception):
    """A value that cannot cross, or a line that is not what the protocol allows."""


def encode(value: Any, to: str = "the checker") -> Any:
    count = [0]
    return _enc(value, 0, count, to)


def _enc(v: Any, depth: int, count: list[int], to: str) -> Any:
    count[0] += 1
    if count[0] > MAX_ITEMS:
        raise CrossingError(f"value too large to cross to {to} (over {MAX_ITEMS} items)")
    if depth > MAX_DEPTH:
        raise CrossingError(f"value nested too deep to cross to {to} (over {MAX_DEPTH} levels)")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        try:
            return {"i": str(v)}
        except ValueError:  # over sys.get_int_max_str_digits() digits
            raise CrossingError(f"int too large to cross to {to}") from None
    if t is float:
        return {"f": repr(v)}
    if t is bytes:
        return {"b": base64.b64encode(v).decode("ascii")}
    if t is list or t is tuple or t is set or t is frozenset:
        items = [_enc(x, depth + 1, count, to) for x in v]
        return items if t is list else {_TAGS[t]: items}
    if t is dict:
        return {"d": [[_enc(k, depth + 1, count, to), _enc(x, depth + 1, count, to)] for k, x in v.items()]}
    raise CrossingError(f"value of type {t.__name__} cannot cross to {to}")


def decode(data: Any) -> Any:
    count = [0]
    return _dec(data, 0, count)


def _dec(d: Any, depth: int, count: list[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_ITEMS or depth > MAX_DEPTH:
        raise CrossingError("value too large or nested too deep")
    t = type(d)
    if d is None or t is bool or t is str:
        return d
    if t is list:
        return [_dec(x, depth + 1, count) for x in d]
    if t is not dict or len(d) != 1:
        raise CrossingError(f"malformed value: {str(d)[:80]!r}")
    ((tag, payload),) = d.items()
    try:
        if tag == "i" and type(payload) is str:
            return int(payload)
        if tag == "f" and type(payload) is str:
            return float(payload)
        if tag == "b" and type(payload) is str:
            return base64.b64decode(payload.encode("ascii"), validate=True)
        if tag in ("t", "s", "fs") and type(payload) is list:
            items = [_dec(x, depth + 1, count) for x in payload]
            return {"t": tuple, "s": set, "fs": frozenset}[tag](items)
        if tag == "d" and type(payload) is list:
            pairs = []
            for pair in payload:
                if type(pair) is not list or len(pair) != 2:
                    raise CrossingError("malformed dict entry")
                pairs.append((_dec(pair[0], depth + 1, count), _dec(pair[1], depth + 1, count)))
            return dict(pairs)
    except (ValueError, TypeError) as e:  # int("x"), bad base64, an unhashable key
        raise CrossingError(f"malformed value for tag {tag!r}: {e}") from None
    raise CrossingError(f"malformed value: unknown tag {tag!r}")


def dumps(message: dict[str, Any]) -> bytes:
    line = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8", "surrogatepass") + b"\n"
    if len(line) > MAX_LINE:
        raise CrossingError(f"message too large to cross ({len(line)} bytes, at most {MAX_LINE})")
    return line


def loads(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise CrossingError(f"message too large ({len(line)} bytes, at most {MAX_LINE})")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise CrossingError(f"malformed message: {line[:80]!r}") from None
    if type(message) is not dict:
        raise CrossingError(f"malformed message: {line[:80]!r}")
    return message
