from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.doubles import AnthropicDouble, OpenAIDouble
from tests.harness import GatewayServer, make_config, two_tier_config

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def openai_up() -> Iterator[OpenAIDouble]:
    d = OpenAIDouble()
    d.start()
    yield d
    d.stop()


@pytest.fixture
def anthropic_up() -> Iterator[AnthropicDouble]:
    d = AnthropicDouble()
    d.start()
    yield d
    d.stop()


@pytest.fixture
def gateway(tmp_path) -> Iterator[Callable[..., GatewayServer]]:
    started: list[GatewayServer] = []

    def make(cfg: dict[str, Any] | str) -> GatewayServer:
        g = GatewayServer(make_config(cfg, tmp_path)).start()
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()


@pytest.fixture
def two_tier(gateway, openai_up, anthropic_up):
    """`local` on the OpenAI double, `frontier` ($3/$15 per million) on the Anthropic double."""

    def make(**kw: Any) -> GatewayServer:
        return gateway(two_tier_config(openai_up.url, anthropic_up.url, **kw))

    return make


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()
