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
