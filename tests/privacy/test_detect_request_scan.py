"""scan_request finds sensitive values in every place text can hide in a canonical Request."""

from __future__ import annotations

import pytest

from tierwise.canonical import (
    ImageBlock,
    Message,
    OtherBlock,
    Request,
    ResponseFormat,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig
from tierwise.privacy.request_scan import all_findings, iter_texts, scan_request

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
IBAN = "DE89 3704 0044 0532 0130 00"
KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123"


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(DetectionConfig.model_validate({
        "classes": {"pii": {}, "secrets": {}, "customer": {}, "all": {"detectors": list(BUILTIN_ENTITIES)}},
        "ner": {"enabled": False}}))


def rich_request() -> Request:
    return Request(
        model="m",
        system=[TextBlock(f"Support agent. Escalate to {EMAIL}.")],
        messages=[
            Message("user", [
                TextBlock(f"My card is {CARD}."),
                ImageBlock(url=f"https://files.example.com/scans/{EMAIL}/id.png"),
                OtherBlock({"type": "document", "title": f"statement {IBAN}.pdf", "source": {"type": "text"}}),
            ]),
            Message("assistant", [
                ThinkingBlock(f"The user's IBAN might be {IBAN}", signature="sig"),
                ToolUseBlock("t1", "lookup", {"query": f"card {CARD}", "nested": [{"k": EMAIL}], EMAIL: 1}),
            ]),
            Message("user", [ToolResultBlock("t1", [TextBlock(f"account owner {EMAIL}, key {KEY}")])]),
        ],
        tools=[Tool("lookup", description=f"Looks up customers; admin is {EMAIL}",
                    input_schema={"type": "object", "properties": {
                        "query": {"type": "string", "description": f"e.g. {CARD}",
                                  "enum": [f"iban {IBAN}", "other"]}}})],
        response_format=ResponseFormat(type="json_schema", name="r", schema={
            "type": "object", "properties": {"x": {"type": "string", "default": EMAIL}}}),
        stop=[f"END {EMAIL}"],
        metadata={"user_id": EMAIL, "tags": [f"card {CARD}"]},
        user=EMAIL,
        extra={"unknown_field": f"token {KEY}"},
    )


EXPECTED = {
    "system[0].text": "EMAIL_ADDRESS",
    "messages[0].content[0].text": "CREDIT_CARD",
    "messages[0].content[1].url": "EMAIL_ADDRESS",
    "messages[0].content[2].raw.title": "IBAN_CODE",
    "messages[1].content[0].thinking": "IBAN_CODE",
    "messages[1].content[1].input.query": "CREDIT_CARD",
    "messages[1].content[1].input.nested[0].k": "EMAIL_ADDRESS",
    f"messages[1].content[1].input.{EMAIL}#key": "EMAIL_ADDRESS",
    "messages[2].content[0].content[0].text": "EMAIL_ADDRESS",
    "tools[0].description": "EMAIL_ADDRESS",
    "tools[0].input_schema.properties.query.description": "CREDIT_CARD",
    "tools[0].input_schema.properties.query.enum[0]": "IBAN_CODE",
    "response_format.schema.properties.x.default": "EMAIL_ADDRESS",
    "stop[0]": "EMAIL_ADDRESS",
    "metadata.user_id": "EMAIL_ADDRESS",
    "metadata.tags[0]": "CREDIT_CARD",
    "user": "EMAIL_ADDRESS",
    "extra.unknown_field": "SECRET",
}


def test_every_place_is_scanned(det):
    found = scan_request(rich_request(), det)
    for loc, entity in EXPECTED.items():
        assert loc in found, f"nothing found at {loc}"
        assert entity in {f.entity for f in found[loc]}, f"{entity} not found at {loc}"
    # the tool result holds an email and a key
    assert {f.entity for f in found["messages[2].content[0].content[0].text"]} == {"EMAIL_ADDRESS", "SECRET"}


def test_classes_of_the_whole_request(det):
    found = scan_request(rich_request(), det)
    counts = det.classes_of(all_findings(found))
    assert counts["secrets"] == 2
    assert counts["pii"] >= len(EXPECTED) - 1


def test_clean_request_has_no_findings(det):
    r = Request(model="m", messages=[Message("user", [TextBlock("What is the capital of France?")])],
                tools=[Tool("calc", description="adds numbers")])
    assert scan_request(r, det) == {}


def test_data_urls_are_not_scanned_as_text():
    r = Request(model="m", messages=[Message("user", [ImageBlock(url="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==")])])
    assert [loc for loc, _ in iter_texts(r) if "url" in loc] == []


def test_deep_json_is_bounded(det):
    deep: dict = {"v": f"mail {EMAIL}"}
    for _ in range(200):
        deep = {"d": deep}
    r = Request(model="m", messages=[Message("user", [ToolUseBlock("t", "f", deep)])])
    found = scan_request(r, det)
    # past the depth bound the rest is scanned as one text: the value is still found
    assert any(f.entity == "EMAIL_ADDRESS" for f in all_findings(found))
