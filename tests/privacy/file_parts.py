"""One file sent through each official SDK, and what the remote double received: the file tests' shared pieces
(privacy rounds 14 and 15, review34d)."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.gateway.conftest import ant, oai


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def sent(up: Any) -> str:
    """Every request body the double received, as text."""
    return "\n".join(r.raw.decode("utf-8", "replace") for r in up.requests)


def send(g: Any, up: Any, openai_up: Any, data: bytes, media: str) -> None:
    """`data` as an OpenAI `file_data` (OpenAI SDK) or an Anthropic base64 document (Anthropic SDK)."""
    if up is openai_up:
        parts: Any = [{"type": "file", "file": {"filename": "f", "file_data": f"data:{media};base64,{b64(data)}"}},
                      {"type": "text", "text": "What is in it?"}]
        chat = oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": parts}])
        assert chat.choices[0].message.content
    else:
        doc: Any = [{"type": "document", "source": {"type": "base64", "media_type": media, "data": b64(data)}},
                    {"type": "text", "text": "What is in it?"}]
        msg = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": doc}])
        assert msg.content


def send_and_read(remote: tuple[Any, Any], openai_up: Any, data: bytes, media: str) -> tuple[Any, str]:
    """`data` sent through the `remote` fixture's gateway (`send`); the remote double, and every request body it
    received as text (`sent`)."""
    g, up = remote
    send(g, up, openai_up, data, media)
    return up, sent(up)


def files_sent(up: Any) -> list[bytes]:
    """The decoded bytes of every file part / document / image the remote double received."""
    out: list[bytes] = []
    for r in up.requests:
        for m in json.loads(r.raw)["messages"]:
            for c in m["content"] if isinstance(m["content"], list) else []:
                src = c.get("source") or c.get("file") or c.get("image_url") or {}
                v = src.get("data") or src.get("file_data") or src.get("url") or ""
                if v:
                    out.append(base64.b64decode(v.split(",", 1)[-1]))
    return out
