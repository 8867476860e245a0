from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401 (the same fixtures)
from tests.harness import REDIS_URL, drop_redis_keys  # noqa: F401 (REDIS_URL: imported from here too)

# The Redis budget store's timeout for tests that are not about it (the product's default is 0.5 s): a loop stalled
# that long on a busy machine ran it out, and an admission was a 503 "budget store unavailable". The tests of store
# timeouts and outages set their own.
STORE_TIMEOUT_S = 30


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    drop_redis_keys(REDIS_URL, prefix)
