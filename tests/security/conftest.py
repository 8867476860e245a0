from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from tests.budgets.conftest import redis_prefix  # noqa: F401 (fixtures)
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401
from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401
from tests.harness import unavailable
from tierwise import sandbox
from tierwise.sandbox import backend, landlock
from tierwise.sandbox import bwrap as bwrap_mod


@pytest.fixture
def landlock_alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Weak runs with the host in sight (no mount namespace: a root gateway without CAP_SYS_ADMIN, a container's
    default): Landlock is what bounds them."""
    if landlock.abi() < 1:
        unavailable("this kernel has no Landlock")
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    monkeypatch.setattr(backend, "weak_read_only_host", functools.cache(lambda: False))  # (configure clears it)
    yield
    sandbox.status.cache_clear()
    sandbox.configure()
