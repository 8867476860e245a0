from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401  (fixtures)
