"""The judge's fence tag and the privacy boundary (session 33, flakes33).

The tag was 12 hex digits drawn per judge call; about one in 280 was all digits (`924896726890`), which the privacy
detector reads as a phone number (or a card number): under `pii: local_only` the judge's call was refused, and a
shadow pair or a local answer went unjudged (a CI failure of tests/security/test_loop_privacy.py). The tag keeps
its 48 random bits, written in 16 consonants.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.privacy.support import found
from tierwise.canonical import Message, Request, Response, TextBlock
from tierwise.privacy.detect import Detector
from tierwise.verifiers import judge
from tierwise.verifiers.judge import LlmJudgeVerifier, judge_prompt

DIGIT_TAGS = ["924896726890", "690402462394", "603443546750"]  # drawn as hex in a run: a phone, a phone, a card


@pytest.fixture(scope="module")
def detector() -> Detector:
    """Every built-in class a config can name (NER off, as the suite runs the boundary)."""
    classes: dict[str, dict[str, object]] = {c: {} for c in ("pii", "phi", "secrets", "customer", "urls", "dates",
                                                            "affiliations")}
    return Detector.from_dict({"ner": {"enabled": False}, "classes": classes})


def test_a_fence_tag_holds_no_digit():
    tags = {judge._fence_tag("What is 2 + 2?", "4") for _ in range(2000)}
    assert len(tags) == 2000  # still drawn per call
    assert all(re.fullmatch(r"[b-df-hj-km-np-tv]{12}", t) for t in tags), sorted(tags)[:5]


@pytest.mark.parametrize("drawn", DIGIT_TAGS)
def test_a_judge_prompt_shows_the_boundary_no_value_whatever_the_draw(drawn, detector, monkeypatch):
    """The random source gives bytes that were an all-digit tag: the prompt still holds nothing the detector finds
    (before: a PHONE_NUMBER or CREDIT_CARD finding, the tag itself)."""
    text = judge_prompt(judge.DEFAULT_RUBRIC, "What is 2 + 2? (plain)", "local answer")
    assert found(detector, text) == []
    monkeypatch.setattr(judge, "secrets", SimpleNamespace(token_hex=lambda n: drawn))
    req = LlmJudgeVerifier("judge").judge_request(
        Request(model="m", messages=[Message("user", [TextBlock("What is 2 + 2? (plain)")])]),
        Response(id="r", model="m", content=[TextBlock("local answer")]))
    text = req.messages[0].text()
    assert found(detector, text) == []
    assert drawn not in text
