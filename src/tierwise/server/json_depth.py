"""How deep a parsed JSON request body nests, checked only when it could be too deep.

orjson parses up to 1024 levels but encodes only about 250, so a body nested between the
two used to be accepted and then fail on its way upstream. The gateway refuses bodies
deeper than `server.limits.max_json_depth` at the door instead.

Cost: a body cannot nest deeper than it has `[` and `{` bytes, and counting those is a
C-speed scan, so ordinary requests never pay for the walk; the walk (one visit per
container, stopping at the first one too deep) runs only for bodies with many brackets.
"""

from __future__ import annotations

from typing import Any


def depth_exceeds(value: Any, limit: int) -> bool:
    """Does `value` hold a list/dict nested more than `limit` levels (the top level is 1)?"""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        v, d = pop()
        if d > limit:
            return True
        for c in v.values() if isinstance(v, dict) else v:
            if isinstance(c, (dict, list)):
                push((c, d + 1))
    return False


def too_deep(body: bytes, parsed: Any, limit: int) -> bool:
    """`parsed` (the JSON of `body`) nests deeper than `limit`."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    return depth_exceeds(parsed, limit)
