"""Streamed restoration (tierwise.privacy.stream_restore): any split of the stream gives the
whole-text restore, the hold-back never exceeds one stand-in's length, tool-call argument JSON
stays valid, and the canonical event layer flushes before block stops."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    StreamChunk,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from tierwise.privacy.redact import Pseudonymizer
from tierwise.privacy.stream_restore import BlockRestorer, StreamRestorer


@dataclass(frozen=True)
class F:
    entity: str
    start: int
    end: int


def _pseudonymizer(surrogates: bool = False) -> Pseudonymizer:
    p = Pseudonymizer(surrogate_entities=["CREDIT_CARD", "IBAN_CODE"] if surrogates else (), secret=b"s" * 32)
    for entity, value in [
        ("PERSON", "Jane Doe"),
        ("PERSON", 'O"Brien \\ Jr'),
        ("EMAIL_ADDRESS", "jane@x.org"),
        ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("IBAN_CODE", "DE89370400440532013000"),
    ] + [("PERSON", f"Person {i}") for i in range(10)]:  # PERSON_12 exists: two-digit numbers
        p.stand_in(entity, value)
    return p


def _run(p: Pseudonymizer, pieces: list[str], json_mode: bool = False) -> tuple[str, int]:
    r = BlockRestorer(p, json_mode=json_mode)
    out, worst = [], 0
    for piece in pieces:
        out.append(r.push(piece))
        worst = max(worst, r.held)
    out.append(r.finish())
    return "".join(out), worst


def _whole(p: Pseudonymizer, text: str, json_mode: bool = False) -> str:
    return p.restore_json_fragment(text) if json_mode else p.restore(text)


TEXTS = [
    "Hi <PERSON_1>, mail <EMAIL_ADDRESS_1> now.",
    "PERSON_1PERSON_2 [PERSON_12] < person_3 > {PERSON_1}<PERSON_99>",
    "SALESPERSON_1 x<PERSON_1 <<PERSON_2>> PERSON_1",
    "<CREDIT_CARD_1><IBAN_CODE_1>",
    "end with <PERSON_1",
    "end with PERSON_1",
]


def test_every_two_and_three_way_split_equals_whole_restore_and_respects_bound():
    for surrogates in (False, True):
        p = _pseudonymizer(surrogates)
        texts = TEXTS + (
            [
                p.stand_in("CREDIT_CARD", "4111 1111 1111 1111")
                + " and "
                + p.stand_in("IBAN_CODE", "DE89370400440532013000"),
                "PERSON_12" + p.stand_in("CREDIT_CARD", "4111 1111 1111 1111") + "PERSON_1",
            ]
            if surrogates
            else []
        )
        bound = p.max_match_len
        for text in texts:
            want = _whole(p, text)
            n = len(text)
            for i in range(n + 1):
                for j in range(i, n + 1):
                    got, worst = _run(p, [text[:i], text[i:j], text[j:]])
                    assert got == want, (text, i, j)
                    assert worst <= bound


def test_char_by_char_holds_back_only_placeholder_prefixes():
    p = _pseudonymizer()
    r = BlockRestorer(p)
    emitted = [r.push(c) for c in "Hello <PERSON_1> bye"]
    assert "".join(emitted[:6]) == "Hello "  # plain text is not held back
    assert emitted[6:15] == [""] * 9  # "<PERSON_1" is held until it cannot grow further
    assert emitted[15] == ""  # ">" completes it; a match touching the end waits for one more character
    assert "".join(emitted) + r.finish() == "Hello Jane Doe bye"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<PERSON_1>",
                "PERSON_12",
                "[EMAIL_ADDRESS_1]",
                "< person_2 >",
                "<PERSON_77>",
                "a",
                " ",
                "<",
                ">",
                "_",
                "1",
                "\\n",
                '"',
                "SALES",
                "PERSON_",
                "\t",
                "\\u003c",
                "\\u003e",
                "\\u00",
                "42",
                "CARD",  # stands for the card's surrogate (or its placeholder)
                "IBAN",
            ]
        ),
        max_size=25,
    ),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_property_random_texts_random_splits(parts, cuts, json_mode, surrogates):
    p = _pseudonymizer(surrogates)
    card = p.stand_in("CREDIT_CARD", "4111 1111 1111 1111")
    iban = p.stand_in("IBAN_CODE", "DE89370400440532013000")
    text = "".join(card if x == "CARD" else iban if x == "IBAN" else x for x in parts)
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    got, worst = _run(p, pieces, json_mode)
    assert got == _whole(p, text, json_mode)
    assert worst <= p.max_match_len


def test_json_arguments_split_anywhere_stay_valid_with_escaped_values():
    p = _pseudonymizer()
    args = json.dumps(
        {"to": "<PERSON_2>", "cc": ["PERSON_1", "<EMAIL_ADDRESS_1>"], "note": "line\nPERSON_2 end"}
    )
    for i in range(len(args) + 1):
        for j in range(i, len(args) + 1):
            got, _ = _run(p, [args[:i], args[i:j], args[j:]], json_mode=True)
            assert json.loads(got) == {
                "to": 'O"Brien \\ Jr',
                "cc": ["Jane Doe", "jane@x.org"],
                "note": 'line\nO"Brien \\ Jr end',
            }


def test_json_arguments_with_go_style_escaped_brackets():
    p = _pseudonymizer()
    args = '{"to": "\\u003cPERSON_2\\u003e", "cc": "x\\u003cPERSON_1\\u003e"}'
    assert json.loads(args) == {"to": "<PERSON_2>", "cc": "x<PERSON_1>"}
    for i in range(len(args) + 1):
        got, _ = _run(p, [args[:i], args[i:]], json_mode=True)
        assert json.loads(got) == {"to": 'O"Brien \\ Jr', "cc": "xJane Doe"}, i


def _events(text_chunks: list[str], json_chunks: list[str]) -> list:
    ev = [
        MessageStart("m1", "m"),
        BlockStart(0, ThinkingBlock("")),
        BlockDelta(0, "thinking", "about <PERS"),
        BlockDelta(0, "thinking", "ON_1>"),
    ]
    ev += [BlockDelta(0, "signature", "sig<PERSON_1>"), BlockStop(0), BlockStart(1, TextBlock(""))]
    ev += [BlockDelta(1, "text", c) for c in text_chunks] + [
        BlockStop(1),
        BlockStart(2, ToolUseBlock("t", "send", {})),
    ]
    ev += [BlockDelta(2, "input_json", c) for c in json_chunks] + [MessageDelta("tool_use"), MessageStop()]
    return ev


def test_event_layer_restores_text_thinking_tool_args_and_flushes_before_stop():
    p = _pseudonymizer()
    text = "Dear <PERSON_1>, card <CREDIT_CARD_1>"
    args = '{"who": "<PERSON_2>"}'
    sr = StreamRestorer(p)
    out = []
    for e in _events([text[:7], text[7:30], text[30:]], [args[:12], args[12:]]):
        out.extend(sr.feed(e))

    def joined(index, kind):
        return "".join(
            e.value for e in out if isinstance(e, BlockDelta) and e.index == index and e.delta_type == kind
        )

    assert joined(0, "thinking") == "about Jane Doe"
    assert joined(0, "signature") == "sig<PERSON_1>"  # signatures are opaque: untouched
    assert joined(1, "text") == "Dear Jane Doe, card 4111 1111 1111 1111"
    assert json.loads(joined(2, "input_json")) == {"who": 'O"Brien \\ Jr'}
    # Every delta of a block comes before its stop; the tool block (never stopped) before message_delta.
    stop1 = next(i for i, e in enumerate(out) if isinstance(e, BlockStop) and e.index == 1)
    assert all(i < stop1 for i, e in enumerate(out) if isinstance(e, BlockDelta) and e.index == 1)
    md = next(i for i, e in enumerate(out) if isinstance(e, MessageDelta))
    assert all(i < md for i, e in enumerate(out) if isinstance(e, BlockDelta) and e.index == 2)
    assert not any(isinstance(e, BlockDelta) and e.value == "" for e in out)


def test_restore_chunk_drops_raw_bytes_and_empty_mapping_passes_through():
    p = _pseudonymizer()
    chunk = StreamChunk(
        [BlockStart(0, TextBlock("")), BlockDelta(0, "text", "hi <PERSON_1> ")],
        raw=b"raw",
        raw_format="anthropic",
    )
    out = StreamRestorer(p).restore_chunk(chunk)
    assert out.raw is None and [e.value for e in out.events if isinstance(e, BlockDelta)] == ["hi Jane Doe "]
    assert StreamRestorer(Pseudonymizer()).restore_chunk(chunk) is chunk
