"""The SSE parser: the one-line fast shapes agree with the general parse, in any split of the bytes."""

from __future__ import annotations

import pytest

from tierwise.wire.sse import SSEMessage, SSEParser, parse_block

CASES = [
    b"data: {\"a\":1}\n\n",
    b"data:{\"a\":1}\n\n",  # no space after the colon
    b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
    b"event: e\ndata: a\ndata: b\n\n",  # multi-line data
    b": keep-alive comment\n\n",
    b"event: ping\n\n",
    b"data: \n\n",
    b"id: 7\ndata: z\n\n",
    b"data: x\r\n\r\n",  # CRLF line ends
    b"event: e\r\ndata: y\r\n\r\n",
    b"data: [DONE]\n\n",
]


def general(stream: bytes) -> list[SSEMessage]:
    text = stream.replace(b"\r\n", b"\n")
    out = []
    for block in text.split(b"\n\n")[:-1]:
        msg = parse_block(block, block + b"\n\n")
        if msg is not None:
            out.append(msg)
    return out


@pytest.mark.parametrize("case", CASES)
def test_fast_shapes_match_the_general_parse(case: bytes) -> None:
    assert SSEParser().feed(case) == general(case)


def test_any_split_of_a_stream_gives_the_same_messages() -> None:
    stream = b"".join(CASES)
    whole = SSEParser().feed(stream)
    assert [m.event for m in whole][:3] == [None, None, "message_start"]
    for cut in range(1, len(stream)):
        p = SSEParser()
        assert p.feed(stream[:cut]) + p.feed(stream[cut:]) == whole


def test_an_event_ending_in_a_bare_cr_is_not_held_for_the_next_read() -> None:
    p = SSEParser()
    assert [m.data for m in p.feed(b"data: a\r\r")] == [b"a"]
    assert [m.data for m in p.feed(b"data: b\r\n\r")] == [b"b"]  # complete: the LF to come is its pair
    assert [m.data for m in p.feed(b"\ndata: c\r\n\r\n")] == [b"c"]
    assert p.feed(b"") == [] and [m.data for m in p.feed(b"\ndata: d\n\n")] == [b"d"]  # an empty read keeps the pairing


def test_any_split_of_a_cr_only_stream_gives_the_same_messages() -> None:
    stream = b"data: x\r\rdata: y\r\r\nevent: e\rdata: z\r\r"
    whole = SSEParser().feed(stream)
    assert [m.data for m in whole] == [b"x", b"y", b"z"]
    for cut in range(1, len(stream)):
        p = SSEParser()
        assert p.feed(stream[:cut]) + p.feed(stream[cut:]) == whole
