"""The detection API other parts build on: Finding, DetectionConfig, Detector, scan_request."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tierwise.privacy.detect import Detector, DetectorError, resolve_overlaps
from tierwise.privacy.detect_config import PRESETS, DetectionConfig
from tierwise.privacy.finding import Finding
from tierwise.privacy.redact import Pseudonymizer


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(DetectionConfig(ner={"enabled": False}))


def test_scan_returns_sorted_non_overlapping_findings(det):
    text = "Card 4111 1111 1111 1111, mail jane.doe@example.com, IBAN DE89 3704 0044 0532 0130 00."
    fs = det.scan(text)
    assert [f.entity for f in fs] == ["CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE"]
    assert [text[f.start:f.end] for f in fs] == [
        "4111 1111 1111 1111", "jane.doe@example.com", "DE89 3704 0044 0532 0130 00"]
    assert all(a.end <= b.start for a, b in zip(fs, fs[1:], strict=False))
    assert all(isinstance(f, Finding) and f.detector for f in fs)


def test_classes_of_counts_each_class_a_finding_belongs_to(det):
    fs = det.scan("key sk-proj-abcdefghijklmnopqrstuvwxyz012345 and jane@example.com")
    counts = det.classes_of(fs)
    assert counts["secrets"] == 1
    assert counts["pii"] == 1 and counts["customer"] == 1


def test_empty_and_short_text_fast_path(det):
    assert det.scan("") == [] and det.scan("hi") == [] and det.scan("   \n ") == []


def test_findings_feed_the_pseudonymizer(det):
    text = "Write to jane.doe@example.com about card 4111-1111-1111-1111."
    p = Pseudonymizer()
    red = p.redact(text, det.scan(text))
    assert "jane.doe" not in red and "4111" not in red
    assert p.restore(red) == text


def test_internal_failure_raises_detector_error_without_the_text():
    class Broken:
        name = "broken"
        entities = frozenset({"EMAIL_ADDRESS"})

        def find(self, text):
            raise RuntimeError(text)

    d = Detector(DetectionConfig(ner={"enabled": False}))
    d.recognizers = [Broken()]
    with pytest.raises(DetectorError) as e:
        d.scan("secret value jane@example.com")
    assert "jane" not in str(e.value) and "RuntimeError" in str(e.value)


def test_text_over_the_size_bound_fails_closed():
    d = Detector(DetectionConfig(ner={"enabled": False}, max_chars=10_000))
    with pytest.raises(DetectorError):
        d.scan("a" * 10_001)


def test_overlaps_keep_the_best():
    fs = [Finding("A", 0, 10, 0.5, "x"), Finding("B", 2, 5, 0.9, "y"), Finding("C", 5, 12, 0.9, "z")]
    assert [f.entity for f in resolve_overlaps(fs)] == ["B", "C"]


def test_presets_and_user_classes():
    cfg = DetectionConfig.model_validate({
        "classes": {"pii": {}, "customer": {"detectors": ["CUSTOMER_ID", "EMAIL_ADDRESS"]}},
        "user": {"patterns": {"CUSTOMER_ID": [r"CUST-\d{6}"]}},
        "ner": {"enabled": False},
    })
    assert cfg.class_entities()["pii"] == frozenset(PRESETS["pii"])
    d = Detector(cfg)
    fs = d.scan("customer CUST-123456 wrote")
    assert [(f.entity, f.detector) for f in fs] == [("CUSTOMER_ID", "user.pattern")]
    assert d.classes_of(fs) == {"customer": 1}


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"classes": {"mine": {}}}, "classes.mine.detectors"),
        ({"classes": {"pii": {"detectors": ["NOPE"]}}}, "NOPE"),
        ({"phone_regions": ["XX"]}, "XX"),
        ({"user": {"patterns": {"ID": ["("]}}}, "not a valid regular expression"),
        ({"user": {"patterns": {"bad name": ["x"]}}}, "UPPER_SNAKE_CASE"),
        ({"user": {"patterns": {"ID": ["x*"]}}}, "empty string"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_config_names_the_field(data, needle):
    with pytest.raises(ValidationError) as e:
        DetectionConfig.model_validate(data)
    assert needle in str(e.value)
