"""Cache marks and web search tools where the reservation's finders did not look (review30c).

An Anthropic body with a system turn mid-conversation (no `mid-conversation-system` beta) is re-encoded from the
canonical request, not forwarded as sent: `source_body` is None. The finders then read only text blocks, so a server
tool's definition (`Tool.raw`: a web search tool, its `max_uses`) and an opaque block's raw JSON (a document, a
search result, with their `cache_control`) went upstream unread: two requests allowing 60 searches each were both
admitted under `admit: fits` $1 ($1.21 billed), and a one-hour mark on a document reserved its input at 1x, not 2x.
A `max_uses` past 1,000 reserved 10 searches while up to 1,000 are counted.
"""

from __future__ import annotations

from tests.budgets.frontier_spend import second_allowing_sixty_searches
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

MID_SYSTEM = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
              {"role": "system", "content": "be brief"}, {"role": "user", "content": "search"}]


def test_searches_behind_a_mid_conversation_system_turn_are_reserved(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                     monkeypatch):
    # (the fee alone: 60 searches' results reserved as input, since costs3, would not fit the dollar by themselves)
    second = second_allowing_sixty_searches(gateway, openai_up, anthropic_up, monkeypatch, MID_SYSTEM)
    assert second == "429", "both admitted: $1.21 billed of a $1 budget"


def test_marks_on_re_encoded_server_tools_and_opaque_blocks_are_found():
    from tierwise.pricing import FIVE, HOUR, cache_mark, searches_allowed
    from tierwise.wire.anthropic_messages import decode_request

    hour, five = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}
    for extra, want in (({"tools": [{"type": "web_search_20250305", "name": "web_search", "cache_control": hour}]},
                         HOUR),
                        ({"messages": [{"role": "user", "content": [{**doc, "cache_control": hour}]}, *MID_SYSTEM]},
                         HOUR),
                        ({"messages": [{"role": "user", "content": "read it"}, {"role": "assistant", "content": [
                            {"type": "tool_use", "id": "t", "name": "read", "input": {}}]},
                            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                          "content": [{**doc, "cache_control": five}]}]},
                            *MID_SYSTEM[1:]]}, FIVE)):
        body = {"model": "m", "max_tokens": 10, "messages": MID_SYSTEM, **extra}
        req = decode_request(body, {})
        assert req.source_body is None  # (re-encoded: the case this test is about)
        assert cache_mark(req) == want, extra
    req = decode_request({"model": "m", "max_tokens": 10, "messages": MID_SYSTEM,
                          "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 7}]}, {})
    assert searches_allowed(req) == 7


def test_a_mark_inside_a_documents_content_source_is_found():
    """A document's `source: {type: "content", content: [blocks]}` takes text blocks with `cache_control` (the SDK's
    ContentBlockSourceParam): not read before review30c, forwarded or nested in a tool result."""
    from types import SimpleNamespace

    from tierwise.pricing import HOUR, cache_mark

    doc = {"type": "document", "source": {"type": "content", "content": [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}}
    assert cache_mark(SimpleNamespace(source_body={"messages": [{"role": "user", "content": [doc]}]})) == HOUR
    result = {"type": "tool_result", "tool_use_id": "t", "content": [doc]}
    assert cache_mark(SimpleNamespace(source_body={"messages": [{"role": "user", "content": [result]}]})) == HOUR


def test_max_uses_past_the_counted_bound_reserves_the_bound():
    from types import SimpleNamespace

    from tierwise.pricing import MAX_SEARCHES, searches_allowed

    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5000}]
    assert searches_allowed(SimpleNamespace(source_body={"tools": tools})) == MAX_SEARCHES
