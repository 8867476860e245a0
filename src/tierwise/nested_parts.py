"""The parts an opaque block carries inside it (canonical.OtherBlock): a server tool's result holds its document
under `content` (Anthropic's `web_fetch_tool_result` -> `web_fetch_result` -> `document`), an MCP tool's result its
text and images, a custom-content document (`source.type: content`) its text and images under `source.content`.
The token estimates (tierwise.tokens) and the file-id check at the edge (wire/anthropic_messages/request_decode.py)
read the same parts, so what one sees the other sees."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 6  # (honest results nest 2 deep: a web fetch's result, then its document)
MAX_PARTS = 1_024


def nested_parts(raw: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """`raw` and the objects under its `content` (an object or a list of them) or its `source.content`, depth first;
    and whether that is all of them (False past `MAX_DEPTH` levels or `MAX_PARTS` parts: the edge refuses such a
    block, so a document cannot be hidden past what the estimates read)."""
    out: list[dict[str, Any]] = []
    stack: list[tuple[dict[str, Any], int]] = [(raw, 0)]
    while stack:
        d, depth = stack.pop()
        if len(out) == MAX_PARTS:
            return out, False
        out.append(d)
        c = d.get("content")
        if isinstance(c, dict):
            c = [c]
        elif not isinstance(c, list):
            c = []
        src = d.get("source")
        if isinstance(src, dict) and src.get("type") == "content" and isinstance(src.get("content"), list):
            c = c + src["content"]  # (review38e: a custom-content document's images were not read)
        # (a plain text piece holds nothing to read: citations chunk a document or a search result into thousands,
        # refused as too many parts before review38e)
        kids = [x for x in c if isinstance(x, dict) and not _plain_text(x)]
        if not kids:
            continue
        if depth == MAX_DEPTH or len(kids) > MAX_PARTS:
            return out, False
        stack.extend((x, depth + 1) for x in reversed(kids))
    return out, True


def _plain_text(part: dict[str, Any]) -> bool:
    return part.get("type") == "text" and "content" not in part and "source" not in part
