"""Images inside an Anthropic custom-content document (`document` whose `source` is `{"type": "content", "content":
[text and image blocks]}`). Session 38's review (review38e): the walk of nested parts (tierwise.nested_parts) read
only `content` keys, not a document's `source.content`, so such images were counted by their bytes alone: an image
by URL is ~100 bytes of the body (~30 tokens reserved) and up to ~1,600 tokens of the upstream's count. Real gateway,
the anthropic SDK, the Anthropic double as the frontier ($3/$15 per million)."""

from __future__ import annotations

import anthropic
import pytest

from tests.budgets.frontier_spend import frontier_config, second_of_two
from tests.doubles import Delay, Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)


def _document(images: list[dict]) -> dict:
    return {"type": "document", "title": "album",
            "source": {"type": "content", "content": [{"type": "text", "text": "the photos"}, *images]}}


def _by_url(i: int) -> dict:
    return {"type": "image", "source": {"type": "url", "url": f"https://example.com/p/{i}.jpg"}}


def test_images_by_url_in_a_content_document_are_reserved(gateway, openai_up, anthropic_up):  # noqa: F811
    """250 images ($0.75 at 1,000 tokens each, what a top-level image reserves): two in flight do not fit $1."""
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0, admit="fits"))
    anthropic_up.default = Delay(3, Reply(text="seen", usage=(250_000, 5)))
    doc = _document([_by_url(i) for i in range(250)])
    second = second_of_two(g, anthropic_up, [{"role": "user", "content": [doc, {"type": "text", "text": "?"}]}])
    # Before: "ok" (each reserved ~8,000 tokens, $0.024; the upstream billed $0.75 each)
    assert second == "429"


def test_a_file_id_image_in_a_content_document_is_refused(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0))
    doc = _document([{"type": "image", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}}])
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": [doc]}])
    assert "file ids" in e.value.body["error"]["message"]
    assert anthropic_up.requests == []  # Before: sent upstream, the id naming a file of the gateway's account


def _chunked(n: int) -> dict:
    return {"type": "document", "title": "report", "citations": {"enabled": True},
            "source": {"type": "content", "content": [{"type": "text", "text": f"Paragraph {i}."} for i in range(n)]}}


def _search_result(n: int) -> dict:
    return {"type": "search_result", "source": "https://example.com/kb", "title": "kb",
            "content": [{"type": "text", "text": f"Passage {i}."} for i in range(n)]}


@pytest.mark.parametrize("where", ["document", "search_result"])
def test_many_text_chunks_are_answered(gateway, openai_up, anthropic_up, where):  # noqa: F811
    """Citations chunk a document (or a search result) into passages: a long report has thousands. Text pieces hold
    nothing the walk counts (their characters are the document's), so they do not count towards `MAX_PARTS`. Before:
    2,000 chunks of a search result were refused 400 since costs10 (and of a document once the walk read
    `source.content`)."""
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0))
    anthropic_up.default = Reply(text="read", usage=(30_000, 5))
    if where == "document":
        content: list = [_chunked(2_000), {"type": "text", "text": "summarise"}]
    else:
        content = [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [_search_result(2_000)]}]
        asked = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "kb", "input": {}}]}
    msgs = [{"role": "user", "content": content}] if where == "document" else [
        {"role": "user", "content": "look it up"}, asked, {"role": "user", "content": content}]
    r = ant(g).messages.create(model="main", max_tokens=10, messages=msgs)
    assert r.content[0].text == "read"
