from __future__ import annotations

from tests.budgets.conftest import redis_prefix  # noqa: F401 (fixtures)
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401
from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401
