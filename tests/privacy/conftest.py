"""Fixtures of the privacy tests: the gateway harness and the upstream doubles (tests/gateway), and a
detector with every built-in class on and NER off (a test file may define its own `det`)."""

import pytest

from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
