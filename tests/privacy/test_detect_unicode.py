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
    # look-alike letters of other scripts (Unicode's confusables): each hid the value before
    ("key sk-\u0430nt-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op", "SECRET",
     "sk-\u0430nt-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op"),
    ("aws AKI\u0410IOSFODNN7EXAMPLE", "SECRET", "AKI\u0410IOSFODNN7EXAMPLE"),
    ("aws \u0391KIAIOSFODNN7EXAMPLE", "SECRET", "\u0391KIAIOSFODNN7EXAMPLE"),  # Greek Alpha
    ("iban D\u0415893704004405320130 00", "IBAN_CODE", "D\u0415893704004405320130 00"),
    ("iban \u0412E68 5390 0754 7034", "IBAN_CODE", "\u0412E68 5390 0754 7034"),  # Cyrillic Ve as B
    ("iban \u0406T60 X054 2811 1010 0000 0123 456", "IBAN_CODE", "\u0406T60 X054 2811 1010 0000 0123 456"),
    ("iban \u0399T60X0542811101000000123456", "IBAN_CODE", "\u0399T60X0542811101000000123456"),  # Greek Iota
    # mathematical alphanumerics (NFKC)
    ("card \U0001d7d2\U0001d7cf\U0001d7cf\U0001d7cf 1111 1111 1111", "CREDIT_CARD",
     "\U0001d7d2\U0001d7cf\U0001d7cf\U0001d7cf 1111 1111 1111"),
    # escapes a reader undoes at sight: percent-encoding, HTML references, \u and \x escapes
    ("mailto: jane.doe%40example.com&x=1", "EMAIL_ADDRESS", "jane.doe%40example.com"),
    ("card=4111%201111%201111%201111", "CREDIT_CARD", "4111%201111%201111%201111"),
    ("<p>jane.doe&#64;example.com</p>", "EMAIL_ADDRESS", "jane.doe&#64;example.com"),
    ("<p>jane.doe&commat;example&period;com</p>", "EMAIL_ADDRESS", "jane.doe&commat;example&period;com"),
    ("card &#52;&#x31;11 1111 1111 1111", "CREDIT_CARD", "&#52;&#x31;11 1111 1111 1111"),
    ('{"note": "mail jane.doe\\u0040example.com"}', "EMAIL_ADDRESS", "jane.doe\\u0040example.com"),
    ("ssn \\x35\\x336-22-8147", "US_SSN", "\\x35\\x336-22-8147"),
]


def test_look_alike_letters_in_prose_are_left_alone(det):
    """Russian and Greek prose keeps its letters: only tokens that also hold an ASCII letter or a
    digit are read as Latin (no half-Latinised words for the name and secret detectors)."""
    for text in ("\u0421\u043e\u0441\u043d\u0430 \u0440\u0430\u0441\u0442\u0451\u0442 \u0443 \u0440\u0435\u043a\u0438",
                 "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u0391\u0392\u0395 \u039a\u039c\u039d\u039f\u03a1\u03a4\u03a7"):
        norm, _ = normalise(text)
        assert norm == text


def test_escapes_that_are_not_values_stay_as_written():
    for text in ('printf("%d items, 100%% done", n); a && b; s = "a%2Fb"', "&nosuchentity; &#xD800;"):
        assert normalise(text)[0] == text


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
