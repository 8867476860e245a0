"""How deep a parsed JSON request body nests, and how many objects and arrays it holds.

orjson parses up to 1024 levels but encodes only 254, so a body nested between the two used
to be accepted and then fail on its way upstream. The gateway refuses bodies deeper than
`server.limits.max_json_depth` at the door instead.

Cost: a body with no more brackets than the limit (most chat bodies) is passed after two
`bytes.count` scans. Otherwise the check is orjson's own encoder (C) run over the parsed body inside
`ENCODER_DEPTH - limit` extra list levels, so it fails exactly when the body nests deeper
than `limit`. That is a fraction of the parse (about 65 µs for a 280 KB body whose parse
takes 370 µs, ~1 µs for an ordinary chat body), against ~800 µs for a Python walk.
"""

from __future__ import annotations

from typing import Any

import orjson

# The deepest nesting orjson.dumps encodes (measured: 254 levels pass, 255 fail).
ENCODER_DEPTH = 254


def _wrappers(extra: int) -> tuple[list[Any], list[Any]]:
    """`extra` nested one-element lists, built once per depth: (outermost, innermost)."""
    inner: list[Any] = [None]
    outer = inner
    for _ in range(extra - 1):
        outer = [outer]
    return outer, inner


_WRAPPERS: dict[int, tuple[list[Any], list[Any]]] = {}


def depth_exceeds(value: Any, limit: int) -> bool:
    """Does `value` hold lists/dicts nested more than `limit` levels (the top level is 1)?"""
    if not isinstance(value, (dict, list)):
        return False
    extra = ENCODER_DEPTH - limit
    if extra <= 0:
        probe = value
    else:
        # The wrapper is reused (building 190 lists per request cost more than the encoding);
        # dumps runs without yielding, so no other request sees the slot filled.
        wrapper = _WRAPPERS.get(extra) or _WRAPPERS.setdefault(extra, _wrappers(extra))
        probe, wrapper[1][0] = wrapper[0], value
    try:
        orjson.dumps(probe)
    except orjson.JSONEncodeError:
        return True
    finally:
        if extra > 0:
            wrapper[1][0] = None
    return False


def containers_exceed(value: Any, cap: int) -> bool:
    """Does `value` hold more than `cap` dicts and lists (itself included)? Stops once it knows."""
    stack = [value]
    n = 0
    while stack:
        v = stack.pop()
        n += 1
        if n > cap:
            return True
        for x in (v.values() if type(v) is dict else v):
            if type(x) is dict or type(x) is list:
                stack.append(x)
    return False


def shape_problem(body: bytes, parsed: Any, limits: Any) -> str | None:
    """Why `parsed` (the JSON object or array of `body`) is refused: it nests deeper than `max_json_depth` (at
    most ENCODER_DEPTH), or holds more than `max_json_containers` objects and arrays; None when it does not.

    Breadth: every object costs the event loop a few microseconds to decode, translate and encode (the
    garbage collector's passes over a million fresh objects more than doubled it): a 29 MB body of 800,000
    one-word messages held the loop, and every other client's request and stream, for 2.6-4.1 s."""
    # Every level and every container opens with a bracket: a body with no more brackets than a limit
    # (strings' brackets counted too, so this only ever sends more bodies on to the exact check) cannot pass
    # it. Two C scans of the bytes; an ordinary chat body stops here.
    brackets = body.count(b"[") + body.count(b"{")
    depth = min(limits.max_json_depth, ENCODER_DEPTH)
    if brackets <= depth:
        return None
    if depth_exceeds(parsed, depth):
        return f"request body nests deeper than {limits.max_json_depth} levels (server.limits.max_json_depth)"
    cap = limits.max_json_containers
    if brackets > cap and containers_exceed(parsed, cap):
        return (f"request body holds more than {cap} JSON objects and arrays (server.limits.max_json_containers): "
                "send fewer messages or content blocks")
    return None
