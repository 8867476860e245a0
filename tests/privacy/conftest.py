"""Fixtures of the boundary tests: the gateway harness and the upstream doubles (tests/gateway)."""

from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401
