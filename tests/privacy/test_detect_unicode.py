"""Hostile text: zero-width and bidi characters, full-width and non-ASCII digits, Unicode dashes
and spaces hide nothing, spans map back to the original text, and huge inputs are bounded."""

from __future__ import annotations

import pytest

from tierwise.privacy.detect import Detector, DetectorError
from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.redact import Pseudonymizer
from tierwise.privacy.textnorm import normalise

CASES = [
    # zero-width space / joiner / word joiner / soft hyphen inside the value
    ("card 4111\u200b1111\u200b1111\u200b1111 ok", "CREDIT_CARD", "4111\u200b1111\u200b1111\u200b1111"),
    ("iban DE89\u200d3704\u200d0044\u200d0532\u200d0130\u200d00", "IBAN_CODE",
     "DE89\u200d3704\u200d0044\u200d0532\u200d0130\u200d00"),
    ("ssn 536\u2060-22\u2060-1234", "US_SSN", "536\u2060-22\u2060-1234"),
    ("mail ja\u00adne@exam\u00adple.com", "EMAIL_ADDRESS", "ja\u00adne@exam\u00adple.com"),
    # default-ignorable characters that are not format characters (variation selectors, Mongolian
    # selectors, Hangul fillers) and combining marks on ASCII characters: each hid a card before
    ("card 4\ufe0f111111111111111", "CREDIT_CARD", "4\ufe0f111111111111111"),
    ("card 4111\u180b1111\u180b1111\u180b1111", "CREDIT_CARD", "4111\u180b1111\u180b1111\u180b1111"),
    ("card 4111\u31641111\u31641111\u31641111", "CREDIT_CARD", "4111\u31641111\u31641111\u31641111"),
    ("card 4\u0301\u0300111 1111 1111 1111", "CREDIT_CARD", "4\u0301\u0300111 1111 1111 1111"),
    ("mail ja\u034fne@exa\U000e0101mple.com", "EMAIL_ADDRESS", "ja\u034fne@exa\U000e0101mple.com"),
    # full-width digits and at-sign
    ("card ４１１１ １１１１ １１１１ １１１１", "CREDIT_CARD", "４１１１ １１１１ １１１１ １１１１"),
    ("mail jane＠example.com", "EMAIL_ADDRESS", "jane＠example.com"),
    # Arabic-Indic and Devanagari digits
    ("SSN ٥٣٦-٢٢-١٢٣٤", "US_SSN", "٥٣٦-٢٢-١٢٣٤"),
    ("call +४४ २० ७९४६ ०९५८", "PHONE_NUMBER", "+४४ २० ७९४६ ०९५८"),
    # Unicode dashes and no-break spaces as separators
    ("ssn 536\u201322\u20131234", "US_SSN", "536\u201322\u20131234"),
    ("card 4111\u00a01111\u00a01111\u00a01111", "CREDIT_CARD", "4111\u00a01111\u00a01111\u00a01111"),
    # bidi overrides around and inside (RTL text)
    ("\u05e9\u05dc\u05d5\u05dd \u202ejane@example.com\u202c \u05ea\u05d5\u05d3\u05d4", "EMAIL_ADDRESS",
     "jane@example.com"),
    ("key \u2066sk-proj-AbCdEfGhIj\u200bKlMnOpQrStUvWx0123\u2069", "SECRET", "sk-proj-AbCdEfGhIj\u200bKlMnOpQrStUvWx0123"),
]


@pytest.mark.parametrize("text, entity, value", CASES, ids=[f"{e}:{i}" for i, (_, e, _v) in enumerate(CASES)])
def test_hidden_values_are_found_with_spans_in_the_original(det, text, entity, value):
    hits = [(f.entity, text[f.start:f.end]) for f in det.scan(text)]
    assert (entity, value) in hits


def test_redacting_a_hidden_value_leaves_none_of_its_digits(det):
    text = "pay with ４１１１\u200b１１１１ 1111-1111 thanks"
    red = Pseudonymizer().redact(text, det.scan(text))
    assert red == "pay with <CREDIT_CARD_1> thanks"


def test_normalise_maps_every_span_back():
    text = "a\u200bb＠c ٣ d\u2013e ﬁ"
    norm, spans = normalise(text)
    assert norm == "ab@c 3 d-e fi"
    assert spans is not None
    assert spans.span(0, 2) == (0, 3)  # "ab" covers the zero-width space between them
    assert text[slice(*spans.span(2, 3))] == "＠"
    assert text[slice(*spans.span(5, 6))] == "٣"
    assert text[slice(*spans.span(11, 13))] == "ﬁ"  # a ligature: both letters map to the one character


def test_ascii_text_is_not_copied():
    text = "plain ascii text"
    norm, spans = normalise(text)
    assert norm is text and spans is None


def test_huge_text_over_the_bound_fails_closed(det):
    with pytest.raises(DetectorError) as e:
        det.scan("4111 1111 1111 1111 " * 250_000)  # 5,000,000 characters
    assert "4111" not in str(e.value)


def test_large_text_under_the_bound_is_scanned_completely(det):
    filler = "lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20_000  # ~1.1 MB
    text = filler + "mail jane@example.com. " + filler
    hits = [(f.entity, text[f.start:f.end]) for f in det.scan(text)]
    assert hits == [("EMAIL_ADDRESS", "jane@example.com")]


def test_pathological_digit_runs_do_not_blow_up(det):
    # long runs of digits and separators: every pattern stays linear (no timing assertion here;
    # the test fails only by never finishing under pytest-timeout)
    text = ("1 " * 50_000) + ("1-" * 50_000) + ("9" * 100_000)
    det.scan(text)


def test_user_pattern_that_runs_too_long_fails_closed():
    d = Detector(DetectionConfig.model_validate({
        "classes": {"c": {"detectors": ["BAD"]}},
        "user": {"patterns": {"BAD": [r"(a+)+$"]}},
        "regex_timeout_s": 0.05,
        "ner": {"enabled": False},
    }))
    with pytest.raises(DetectorError) as e:
        d.scan("a" * 5000 + "!")
    assert "BAD" in str(e.value) or "PatternTimeout" in str(e.value)
