"""wire13: Anthropic `document` and `search_result` blocks sent to an OpenAI-compatible upstream. The OpenAI encoder
dropped them: a text document, a document of content blocks, a search result (top level or in a tool result) never
reached the model, which answered 200 as if it had read them, and count_tokens / the window check counted none of
their text (a 27,000-token document to an 8,192-token model: `input_tokens: 5`, answered). Now their text goes as
text parts (a PDF as OpenAI's `file` part), a document by URL is refused in the Anthropic schema, and their text is
counted. Real HTTP, the upstream doubles, the official anthropic SDK."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.gateway.conftest import ant
from tests.harness import two_tier_config

DOC_TEXT = "The launch code is tangerine-42."
BLOCKS = {
    "text document": {"type": "document", "title": "Memo", "source": {
        "type": "text", "media_type": "text/plain", "data": DOC_TEXT}},
    "content document": {"type": "document", "source": {"type": "content", "content": [
        {"type": "text", "text": DOC_TEXT}]}},
    "search result": {"type": "search_result", "source": "https://example.com/memo", "title": "Memo",
                      "content": [{"type": "text", "text": DOC_TEXT}]},
}


def _g(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def _sent(openai_up) -> str:
    return json.dumps(openai_up.last.body["messages"])


@pytest.mark.parametrize("kind", list(BLOCKS))
def test_the_model_gets_the_documents_text(two_tier, openai_up, kind):
    g = _g(two_tier)
    ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": [
        BLOCKS[kind], {"type": "text", "text": "What is the launch code?"}]}])
    assert "tangerine-42" in _sent(openai_up)


@pytest.mark.parametrize("kind", ["text document", "search result"])
def test_a_document_in_a_tool_result_reaches_the_model(two_tier, openai_up, kind):
    g = _g(two_tier)
    ant(g).messages.create(model="main", max_tokens=10, tools=[{"name": "read", "input_schema": {"type": "object"}}],
                           messages=[{"role": "user", "content": "read the memo"},
                                     {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read",
                                                                        "input": {}}]},
                                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                                   "content": [BLOCKS[kind]]}]}])
    tool = [m for m in openai_up.last.body["messages"] if m["role"] == "tool"]
    assert "tangerine-42" in tool[0]["content"], tool


def test_a_pdf_goes_as_a_file_part(two_tier, openai_up):
    g = _g(two_tier)
    ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": [
        {"type": "document", "title": "r.pdf", "source": {"type": "base64", "media_type": "application/pdf",
                                                          "data": "JVBERi0xLjQK"}},
        {"type": "text", "text": "summarise"}]}])
    parts = openai_up.last.body["messages"][-1]["content"]
    assert {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}} \
        in parts, parts


def test_a_document_by_url_is_refused_in_the_anthropic_schema(gateway, openai_up):
    # a remote OpenAI-compatible model (a local one was refused document URLs already): it was sent without it
    g = gateway(two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                                routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}}))
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
            {"type": "text", "text": "summarise"}]}])
    assert e.value.status_code == 400 and e.value.body["type"] == "error", e.value.body  # type: ignore[index]
    assert openai_up.last is None


def test_count_tokens_and_the_window_count_a_documents_text(two_tier, openai_up):
    g = _g(two_tier)  # the local model's window: 8,192 tokens
    big = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "lorem ipsum " * 9000}}
    msgs = [{"role": "user", "content": [big, {"type": "text", "text": "x"}]}]
    counted = ant(g).messages.count_tokens(model="main", messages=msgs).input_tokens  # type: ignore[arg-type]
    assert counted > 20_000, counted
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=msgs)  # type: ignore[arg-type]
    assert "prompt is too long" in str(e.value), str(e.value)
    assert openai_up.last is None  # refused before any upstream call
