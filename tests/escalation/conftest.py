"""Reuse the gateway tests' fixtures: real gateway and upstream doubles on loopback."""

from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401
