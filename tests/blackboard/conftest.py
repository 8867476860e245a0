from tests.budgets.conftest import REDIS_URL, redis_prefix  # noqa: F401 (the same Redis fixtures)
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
