"""Reversible redaction: consistent placeholders, every place in a Request, restore of mangled
and invented placeholders, format-keeping surrogates (tierwise.privacy.redact / surrogates)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.canonical import (
    Choice,
    ImageBlock,
    Message,
    OtherBlock,
    Request,
    Response,
    ResponseFormat,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from tierwise.privacy.redact import Pseudonymizer
from tierwise.privacy.redact_canonical import redact_request, restore_response
from tierwise.privacy.surrogates import fake_card, fake_iban, iban_valid, luhn_valid


@dataclass(frozen=True)
class F:
    entity: str
    start: int
    end: int


# A tiny detector for the tests: finds the listed literal values (the real one is tierwise.privacy.detect).
VALUES = {
    "Jane Doe": "PERSON",
    "Bob Stone": "PERSON",
    "jane.doe@example.org": "EMAIL_ADDRESS",
    "Jane.Doe@Example.ORG": "EMAIL_ADDRESS",
    "4111 1111 1111 1111": "CREDIT_CARD",
    "4111-1111-1111-1111": "CREDIT_CARD",
    "DE89 3704 0044 0532 0130 00": "IBAN_CODE",
    "+44 20 7946 0958": "PHONE_NUMBER",
    'O"Brien\\x': "PERSON",
}


def detect(text: str) -> list[F]:
    out = []
    for value, entity in VALUES.items():
        i = text.find(value)
        while i >= 0:
            out.append(F(entity, i, i + len(value)))
            i = text.find(value, i + 1)
    return out


def redact(p: Pseudonymizer, text: str) -> str:
    return p.redact(text, detect(text))


def test_same_value_same_placeholder_across_turns_and_normalised_forms():
    p = Pseudonymizer()
    t1 = redact(p, "Jane Doe (jane.doe@example.org) pays with 4111 1111 1111 1111.")
    t2 = redact(p, "Again: Jane.Doe@Example.ORG and card 4111-1111-1111-1111; cc Bob Stone and Jane Doe")
    assert t1 == "<PERSON_1> (<EMAIL_ADDRESS_1>) pays with <CREDIT_CARD_1>."
    assert t2 == "Again: <EMAIL_ADDRESS_1> and card <CREDIT_CARD_1>; cc <PERSON_2> and <PERSON_1>"


def test_overlapping_findings_longest_wins_and_out_of_range_ignored():
    p = Pseudonymizer()
    text = "Call Jane Doe now"
    out = p.redact(text, [F("PERSON", 5, 9), F("PERSON", 5, 13), F("PHONE_NUMBER", 10, 99)])
    assert out == "Call <PERSON_1> now"
    assert p.restore(out) == text


def test_restore_mangled_forms_and_leave_invented_ones():
    p = Pseudonymizer()
    redact(p, "Jane Doe wrote to jane.doe@example.org")
    echoed = "PERSON_1, <person_1>, < PERSON_1 >, [PERSON_1], {EMAIL_ADDRESS_1}; <PERSON_9> PERSON_12 SALESPERSON_1 <FOO_1>"
    assert p.restore(echoed) == (
        "Jane Doe, Jane Doe, Jane Doe, Jane Doe, jane.doe@example.org; <PERSON_9> PERSON_12 SALESPERSON_1 <FOO_1>"
    )


@pytest.mark.parametrize(
    "junk", ["", "<", ">", "<PERSON_", "PERSON_" + "9" * 50, "<<<>>>", "\x00<PERSON_1\ud800", "[PERSON_1"]
)
def test_restore_never_crashes_on_junk(junk):
    p = Pseudonymizer()
    redact(p, "Jane Doe")
    assert isinstance(p.restore(junk), str)
    assert isinstance(Pseudonymizer().restore(junk), str)  # empty mapping: untouched
    assert Pseudonymizer().restore(junk) == junk


def _request() -> Request:
    return Request(
        model="m",
        system=[TextBlock("You help Jane Doe.")],
        messages=[
            Message(
                "user",
                [
                    TextBlock("My card is 4111 1111 1111 1111, mail jane.doe@example.org"),
                    ImageBlock(url="https://x/y.png"),
                ],
            ),
            Message(
                "assistant",
                [
                    ThinkingBlock("Jane Doe wants a refund", signature="sig"),
                    ToolUseBlock(
                        "t1",
                        "lookup",
                        {"Jane Doe": {"iban": "DE89 3704 0044 0532 0130 00", "n": 3, "tags": ["Bob Stone"]}},
                    ),
                ],
            ),
            Message("user", [ToolResultBlock("t1", [TextBlock("owner: Bob Stone, phone +44 20 7946 0958")])]),
            Message("user", [OtherBlock({"type": "document", "title": "Jane Doe CV"})]),
        ],
        tools=[
            Tool(
                "lookup",
                "Look up accounts of Jane Doe",
                {
                    "type": "object",
                    "properties": {"who": {"type": "string", "description": "e.g. Bob Stone"}},
                },
            )
        ],
        metadata={"note": "for Jane Doe", "n": 1},
        response_format=ResponseFormat(
            "json_schema", {"type": "object", "description": "Bob Stone's card"}, "out"
        ),
        user="jane.doe@example.org",
        source_format="anthropic",
        source_body={"raw": "Jane Doe"},
    )


SECRETS = [
    "Jane Doe",
    "Bob Stone",
    "jane.doe@example.org",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "+44 20 7946 0958",
]


def _dump(obj) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(obj), default=str)


def test_every_place_in_a_request_is_redacted_and_pass_through_body_dropped():
    req = _request()
    assert all(s in _dump(req) for s in SECRETS)  # the fixture really holds them everywhere
    p = Pseudonymizer()
    out = redact_request(req, p, detect)
    dumped = _dump(out)
    for s in SECRETS:
        assert s not in dumped, s
    assert out.source_body is None
    assert out.system[0].text == "You help <PERSON_1>."
    use = out.messages[1].content[1]
    assert use.input == {"<PERSON_1>": {"iban": "<IBAN_CODE_1>", "n": 3, "tags": ["<PERSON_2>"]}}
    assert out.messages[1].content[0].thinking == "<PERSON_1> wants a refund"
    assert out.tools[0].description == "Look up accounts of <PERSON_1>"
    assert out.tools[0].input_schema["properties"]["who"]["description"] == "e.g. <PERSON_2>"
    assert out.tools[0].input_schema["properties"]["who"]["type"] == "string"
    assert out.metadata == {"note": "for <PERSON_1>", "n": 1}
    assert out.user == "<EMAIL_ADDRESS_1>"
    assert out.response_format.schema == {"type": "object", "description": "<PERSON_2>'s card"}
    assert req.system[0].text == "You help Jane Doe."  # the original is not mutated


def test_response_restored_in_text_tool_inputs_thinking_and_choices():
    p = Pseudonymizer()
    redact_request(_request(), p, detect)
    resp = Response(
        id="r",
        model="m",
        content=[
            ThinkingBlock("<PERSON_1> asked; check [IBAN_CODE_1]"),
            TextBlock("Dear PERSON_1, your card <CREDIT_CARD_1> is fine. <PERSON_7>"),
            ToolUseBlock("t2", "send", {"to": "<EMAIL_ADDRESS_1>", "<PERSON_2>": ["< person_1 >", 5]}),
        ],
        extra_choices=[Choice([TextBlock("Hi <PERSON_2>")], "end_turn")],
        raw=b'{"content": "<PERSON_1>"}',
        raw_format="anthropic",
    )
    out = restore_response(resp, p)
    assert out.content[0].thinking == "Jane Doe asked; check DE89 3704 0044 0532 0130 00"
    assert out.content[1].text == "Dear Jane Doe, your card 4111 1111 1111 1111 is fine. <PERSON_7>"
    assert out.content[2].input == {"to": "jane.doe@example.org", "Bob Stone": ["Jane Doe", 5]}
    assert out.extra_choices[0].content[0].text == "Hi Bob Stone"
    assert out.raw is None and out.raw_format is None


def test_surrogates_keep_format_and_validate():
    p = Pseudonymizer(
        surrogate_entities=["CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER"], secret=b"k" * 32
    )
    text = "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, mail jane.doe@example.org, tel +44 20 7946 0958, Jane Doe"
    out = redact(p, text)
    for s in SECRETS[2:]:
        assert s not in out
    card = out.split("Card ")[1].split(",")[0]
    iban = out.split("IBAN ")[1].split(",")[0]
    mail = out.split("mail ")[1].split(",")[0]
    tel = out.split("tel ")[1].split(",")[0]
    assert luhn_valid(card) and len(card) == 19 and card[4] == " " and card[0] == "4"
    assert iban_valid(iban) and iban.startswith("DE") and len(iban) == len("DE89 3704 0044 0532 0130 00")
    assert mail.endswith("@example.com") and len(mail.split("@")[0]) == len("jane.doe") and "." in mail
    assert tel.startswith("+44 ") and len(tel) == len("+44 20 7946 0958")
    assert "<PERSON_1>" in out  # no surrogate generator for names: a placeholder
    assert p.restore(out) == text
    # Deterministic per conversation secret, different under another secret.
    q = Pseudonymizer(surrogate_entities=["CREDIT_CARD"], secret=b"k" * 32)
    assert redact(q, "4111 1111 1111 1111") == card
    r = Pseudonymizer(surrogate_entities=["CREDIT_CARD"], secret=b"j" * 32)
    assert redact(r, "4111 1111 1111 1111") != card


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "SE4550000000058398257466",
    ],
)
def test_fake_iban_valid_same_country_and_length_for_many_secrets(iban):
    assert iban_valid(iban)
    for i in range(50):
        fake = fake_iban(iban, bytes([i]) * 32)
        assert iban_valid(fake), fake
        assert fake[:2] == iban[:2] and len(fake) == len(iban) and fake != iban
        assert [c.isdigit() for c in fake[4:]] == [c.isdigit() for c in iban[4:]]


def test_fake_cards_pass_luhn():
    for number in ["4111111111111111", "5500 0000 0000 0004", "3400-000000-00009", "6011000990139424"]:
        for i in range(50):
            fake = fake_card(number, bytes([i]) * 32)
            assert luhn_valid(fake) and len(fake) == len(number) and fake[0] == number[0], fake


def test_json_fragment_restore_escapes_quotes_and_backslashes():
    p = Pseudonymizer()
    redact(p, 'name O"Brien\\x here')
    frag = '{"who": "<PERSON_1>"}'
    restored = p.restore_json_fragment(frag)
    assert json.loads(restored) == {"who": 'O"Brien\\x'}


def test_state_round_trip_keeps_numbering():
    p = Pseudonymizer(surrogate_entities=["CREDIT_CARD"])
    a = redact(p, "Jane Doe 4111 1111 1111 1111")
    q = Pseudonymizer.from_state(json.loads(json.dumps(p.state())))
    assert redact(q, "Jane Doe 4111 1111 1111 1111 Bob Stone") == a + " <PERSON_2>"
    assert q.restore(a) == "Jane Doe 4111 1111 1111 1111"
    assert "Jane" not in repr(p)


def test_surrogates_are_capped_then_placeholders_take_over():
    p = Pseudonymizer(surrogate_entities=["CREDIT_CARD"], max_surrogates=3)
    cards = [f"4111 1111 1111 {i:04d}" for i in range(5)]
    out = [p.stand_in("CREDIT_CARD", c) for c in cards]
    assert all(luhn_valid(o) for o in out[:3])
    assert out[3:] == ["<CREDIT_CARD_1>", "<CREDIT_CARD_2>"]
    assert p.restore(" ".join(out)) == " ".join(cards)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet='abc XYZ@.-+0123456789\n"\\é', max_size=80),
    st.lists(
        st.tuples(
            st.integers(0, 80),
            st.integers(1, 12),
            st.sampled_from(["PERSON", "EMAIL_ADDRESS", "CREDIT_CARD"]),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_property_restore_undoes_redact(text, spans, surrogates):
    p = Pseudonymizer(
        surrogate_entities=["CREDIT_CARD", "EMAIL_ADDRESS"] if surrogates else (), secret=b"q" * 32
    )
    findings = [F(e, s, min(s + n, len(text))) for s, n, e in spans if s < len(text)]
    redacted = p.redact(text, findings)
    if not surrogates:  # a surrogate may by chance equal other text of the sample; placeholders cannot
        assert p.restore(redacted) == text
    # Same value, same stand-in: redacting again gives the same text and issues nothing new.
    before = p.state()
    assert p.redact(text, findings) == redacted
    assert p.state() == before
