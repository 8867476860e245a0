"""Gateway fuzz (session 38, fuzz38): a `type` that is an object or a list beside a `data` key, anywhere inside a
block the codec keeps opaque (a server tool's result), raised TypeError in the privacy scan (`type in <a frozenset>`
hashes it): HTTP 500 with no error in the API's schema. Now it is no base64 type: the request is answered, and the
value in it does not reach the remote model."""

from __future__ import annotations

import httpx2
import pytest


def block(kind: object) -> dict[str, object]:
    doc = {"type": "document", "source": {"type": kind, "media_type": "text/plain", "data": "jane.doe@example.com"}}
    return {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1",
            "content": {"type": "web_fetch_result", "url": "https://example.com/", "content": doc}}


@pytest.mark.parametrize("kind", [{}, [], {"type": "base64"}, ["base64"]], ids=["object", "list", "nested", "listed"])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_type_that_is_an_object_is_answered_not_a_500(remote, kind):
    g, up = remote
    body = {"model": "fb", "max_tokens": 50, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what did it say?"}]},
        {"role": "assistant", "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_fetch",
                                           "input": {"url": "https://example.com/"}}, block(kind)]},
        {"role": "user", "content": "and so?"}]}
    r = httpx2.post(g.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}, timeout=30)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["type"] == "error" and r.json()["error"]["message"]
    assert b"jane.doe" not in b"".join(q.raw for q in up.requests)
