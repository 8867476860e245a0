"""Review of wire14's chunked `content` (session 37, review37d), as a hostile upstream: each chunk of a content list
was a delta of its own, and a change of kind a block of its own. One upstream event of 100,000 one-letter chunks
(2.7 MB) was 100,000 client events (11.6 MB); alternating thinking and text, 300,000 events (33 MB) and 50,000
blocks. Now a content list gives at most one piece of each kind. Real HTTP, the upstream double, the official SDK."""

from __future__ import annotations

from tests.doubles import Raw
from tests.gateway.conftest import ant
from tests.gateway.test_chunked_content import _chunk, _think
from tests.gateway.test_stream_answered_whole import M, _g

N = 20_000


def _events(g):
    with ant(g).messages.stream(model="loc", max_tokens=50, messages=M) as s:
        kinds = [e.type for e in s]
        return kinds, s.get_final_message()


def test_many_text_chunks_in_one_event_are_one_delta(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=_chunk([{"type": "text", "text": "a"}] * N) + _chunk("", "stop") + "data: [DONE]\n\n",
                         content_type="text/event-stream"))
    kinds, msg = _events(g)
    assert msg.content[0].text == "a" * N  # type: ignore[union-attr]
    assert kinds.count("content_block_delta") <= 2, kinds.count("content_block_delta")


def test_alternating_chunks_in_one_event_are_one_block_of_each_kind(two_tier, openai_up):
    g = _g(two_tier)
    pieces = [_think("t") if i % 2 else {"type": "text", "text": "a"} for i in range(N)]
    openai_up.script(Raw(body=_chunk(pieces) + _chunk("", "stop") + "data: [DONE]\n\n",
                         content_type="text/event-stream"))
    kinds, msg = _events(g)
    assert len(msg.content) == 2 and kinds.count("content_block_start") == 2, kinds.count("content_block_start")
    assert msg.content[0].text == "a" * (N // 2)  # type: ignore[union-attr]
    assert msg.content[1].thinking == "t" * (N // 2)  # type: ignore[union-attr]
