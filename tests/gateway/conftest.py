from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.doubles import AnthropicDouble, OpenAIDouble
from tests.harness import GatewayServer, make_config, two_tier_config


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
    """Gateway with `local` on the OpenAI double and `frontier` on the Anthropic double."""

    def make(**kw: Any) -> GatewayServer:
        return gateway(two_tier_config(openai_up.url, anthropic_up.url, **kw))

    return make


def _kept(g: Any, client: Any) -> Any:
    keep = getattr(g, "keep", None)  # a GatewayServer closes it when it stops (tests/harness.py)
    return keep(client) if keep is not None else client


# The TLS context every SDK client below is given: the one each would build (httpx2's default, the CA bundle
# loaded), built once. Built per client it was ~25 ms of CPU each, for gateways on plain HTTP, a few thousand a run.
_TLS = httpx2.create_ssl_context()


def oai(g: GatewayServer, **kw: Any) -> openai.OpenAI:
    kw.setdefault("http_client", openai.DefaultHttpxClient(verify=_TLS))  # (the SDK's own defaults otherwise)
    return _kept(g, openai.OpenAI(base_url=g.url + "/v1", api_key=kw.pop("api_key", "test"), max_retries=0, **kw))


def ant(g: GatewayServer, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("http_client", anthropic.DefaultHttpxClient(verify=_TLS))
    return _kept(g, anthropic.Anthropic(base_url=g.url, api_key=kw.pop("api_key", "test"), max_retries=0, **kw))
