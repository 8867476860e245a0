"""Small builders for requests and responses in verifier tests."""

from __future__ import annotations

from typing import Any

from tierwise.canonical import Message, Request, Response, TextBlock


def req(text: str = "question", **kw: Any) -> Request:
    return Request(model="local", messages=[Message("user", [TextBlock(text)])], **kw)


def resp(text: str, **kw: Any) -> Response:
    return Response(id="r1", model="local", content=[TextBlock(text)], **kw)
