"""Anthropic `document` and `search_result` blocks → OpenAI Chat Completions content parts (wire13), for requests an
Anthropic client sends to an OpenAI-compatible upstream (wire/openai_chat/request_encode.py).

The Anthropic decoder carries these blocks as they came (canonical `OtherBlock`) for same-format upstreams, and the
OpenAI encoder dropped them: a text document, a document of content blocks or a search result (top level or in a
tool result) never reached the model, which answered as if it had read it (200), and its text was not counted
against the model's window. Now: text becomes a text part headed by the title (and context, or the result's source);
a document's images become image parts (inline only); a base64 PDF becomes OpenAI's `file` part (`file_data`, which
OpenAI and OpenRouter read; a server that does not answers with its own error); a document the upstream would have
to fetch (by URL) is refused in the client's schema, as a document URL to a local model already was.
"""

from __future__ import annotations

from typing import Any

from tierwise.errors import InvalidRequest

CARRIED = frozenset(("document", "search_result"))


def _head(kind: str, title: Any, more: Any) -> str:
    words = [w for w in (title, more) if isinstance(w, str) and w]
    return f"[{kind}: {' — '.join(words)}]\n" if words else f"[{kind}]\n"


def _text(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise InvalidRequest(f"{path}: must be a string")
    return v


def _content_parts(content: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{path}: must be a string or an array of text and image blocks")
    parts: list[dict[str, Any]] = []
    for i, c in enumerate(content):
        p = f"{path}[{i}]"
        t = c.get("type") if isinstance(c, dict) else None
        if t == "text":
            parts.append({"type": "text", "text": _text(c.get("text"), f"{p}.text")})
        elif t == "image":
            src = c.get("source")
            if not (isinstance(src, dict) and src.get("type") == "base64"):
                raise InvalidRequest(f"{p}.source: an image in a document goes to an OpenAI-compatible model inline "
                                     "(base64) only")
            mt, data = _text(src.get("media_type"), f"{p}.source.media_type"), _text(src.get("data"), f"{p}.source.data")
            parts.append({"type": "image_url", "image_url": {"url": f"data:{mt};base64,{data}"}})
        else:
            raise InvalidRequest(f"{p}.type: must be text or image")
    return parts


def document_parts(raw: dict[str, Any], path: str = "document") -> list[dict[str, Any]]:
    """The OpenAI content parts of an Anthropic `document` or `search_result` block `raw`."""
    if raw.get("type") == "search_result":
        parts = _content_parts(raw.get("content"), f"{path}.content")
        head = {"type": "text", "text": _head("search result", raw.get("title"), raw.get("source"))}
        return _joined([head, *parts])
    src = raw.get("source")
    st = src.get("type") if isinstance(src, dict) else None
    head = {"type": "text", "text": _head("document", raw.get("title"), raw.get("context"))}
    if st == "text":
        return _joined([head, {"type": "text", "text": _text(src.get("data"), f"{path}.source.data")}])  # type: ignore[union-attr]
    if st == "content":
        return _joined([head, *_content_parts(src.get("content"), f"{path}.source.content")])  # type: ignore[union-attr]
    if st == "base64":
        mt = _text(src.get("media_type"), f"{path}.source.media_type")  # type: ignore[union-attr]
        data = _text(src.get("data"), f"{path}.source.data")  # type: ignore[union-attr]
        title = raw.get("title")
        name = title if isinstance(title, str) and title else "document.pdf"
        return [head, {"type": "file", "file": {"filename": name, "file_data": f"data:{mt};base64,{data}"}}]
    raise InvalidRequest(f"{path}.source: a document by {st!r} cannot be sent to an OpenAI-compatible model; send "
                         "it inline (base64 or text)")


def _joined(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent text parts as one (a title and its text read as one passage)."""
    out: list[dict[str, Any]] = []
    for p in parts:
        if out and p["type"] == "text" and out[-1]["type"] == "text":
            out[-1] = {"type": "text", "text": out[-1]["text"] + p["text"]}
        else:
            out.append(p)
    return out
