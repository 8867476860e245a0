from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401
