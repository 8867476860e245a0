"""Fixtures of the privacy tests: the gateway harness and the upstream doubles (tests/gateway), and a
detector with every built-in class on and NER off (a test file may define its own `det`), and `remote`: the
attack rounds' gateway with the remote double, parametrised indirectly by the API the remote speaks (a test file may
define its own)."""

import pytest

from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401
from tests.privacy.support import pii_only_remote
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))


@pytest.fixture
def remote(request, gateway, openai_up, anthropic_up):  # noqa: F811
    """(gateway, the remote double) under `pii: redact`, the only class configured (no `secrets` class: an encoded
    value must not depend on the secret detector taking its encoded form for a key), a fallback route remote -> local;
    `request.param` names the API the remote speaks ("anthropic" or "openai")."""
    return pii_only_remote(request.param, gateway, openai_up, anthropic_up)
