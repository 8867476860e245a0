"""Documents an Anthropic client nests inside other blocks (session 38, costs10). A `document` by URL in a tool
result is fetched and read by the upstream (up to `tokens.PER_FETCHED_DOCUMENT` tokens, as a top-level one is
reserved since wire13), but it reserved only its few bytes: two requests in flight each holding one fitted a budget
of less than one. A document inside a server tool's result (`web_fetch_tool_result` -> `web_fetch_result` ->
`document`) naming a file id was carried upstream, where the id names a file of the gateway's own account (refused
at the top level since review33). Real gateway, the anthropic SDK, the Anthropic double as the frontier ($3/$15 per
million)."""

from __future__ import annotations

import anthropic
import pytest

from tests.budgets.frontier_spend import frontier_config, second_of_two
from tests.doubles import Delay, Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

ASKED = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read", "input": {}}]}


def _with(content: list) -> list:
    return [{"role": "user", "content": "read the report"}, ASKED, {"role": "user", "content": content}]


def test_a_document_by_url_in_a_tool_result_is_reserved(gateway, openai_up, anthropic_up):  # noqa: F811
    """Each request's document may be 200,000 tokens ($0.60 of input): two in flight do not fit `fits` $1."""
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0, admit="fits"))
    anthropic_up.default = Delay(3, Reply(text="read", usage=(150_000, 5)))
    doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}}
    second = second_of_two(g, anthropic_up, _with([{"type": "tool_result", "tool_use_id": "toolu_1",
                                                    "content": [doc]}]))
    # Before: "ok" (each reserved ~30 tokens; $0.90 billed of the $1 budget by two, and N in flight N times that)
    assert second == "429"


@pytest.mark.parametrize("source", [{"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
                                    {"type": "base64", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}])
def test_a_file_id_nested_in_a_server_tool_result_is_refused(gateway, openai_up, anthropic_up, source):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0))
    anthropic_up.default = Reply(text="read", usage=(10, 5))
    fetched = {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1",
               "content": {"type": "web_fetch_result", "url": "https://example.com/a.pdf",
                           "content": {"type": "document", "source": source}}}
    msgs = [{"role": "user", "content": "read it"},
            {"role": "assistant", "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_fetch",
                                               "input": {"url": "https://example.com/a.pdf"}}, fetched]},
            {"role": "user", "content": "and?"}]
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=msgs)
    assert "file ids" in e.value.body["error"]["message"]
    assert anthropic_up.requests == []  # Before: sent upstream, the id naming a file of the gateway's account


def test_a_deeply_nested_block_is_refused(gateway, openai_up, anthropic_up):  # noqa: F811
    """Past the depth the estimates read, a document could hide: such a block is refused, never half read."""
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0))
    inner: dict = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    for _ in range(8):
        inner = {"type": "web_fetch_result", "url": "https://example.com", "content": inner}
    block = {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1", "content": inner}
    msgs = [{"role": "user", "content": "read it"},
            {"role": "assistant", "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_fetch",
                                               "input": {}}, block]},
            {"role": "user", "content": "and?"}]
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=msgs)
    assert "nests more than" in e.value.body["error"]["message"]
