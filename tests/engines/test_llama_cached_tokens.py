"""Issue 16, point 5, against a real llama.cpp `llama-server`: the prompt tokens it serves from its
cache reach the ledger as cached input and `tierwise trace` shows them (it once showed `1/8` for a
prompt of which 518 tokens came from the cache).

llama-server's OpenAI endpoint reports them as `usage.prompt_tokens_details.cached_tokens` (with
`prompt_tokens` counting every prompt token), its Anthropic endpoint as `cache_read_input_tokens`
(with `input_tokens` counting only the uncached ones). The same prompt twice: the second is cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml
from click.testing import CliRunner

from tests.engines.conftest import LlamaServer
from tests.harness import GatewayServer, make_config
from tierwise.cli import main as cli
from tierwise.ledger.store import Ledger

# A system prompt long enough that the cached prefix is clearly most of it.
SYSTEM = "You answer briefly. " + "alpha beta gamma delta " * 40


@pytest.fixture(scope="module")
def served(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    timeouts = {"connect": 2, "read": 60}
    data = {
        "ledger": {"path": "ledger.db"},
        "providers": {
            "llama-openai": {"kind": "openai", "base_url": llama_server.url + "/v1", "locality": "local",
                             "timeouts": timeouts},
            "llama-anthropic": {"kind": "anthropic", "base_url": llama_server.url, "locality": "local",
                                "timeouts": timeouts},
        },
        "models": {
            "tiny-openai": {"provider": "llama-openai", "model": "tiny", "context_window": 4096},
            "tiny-anthropic": {"provider": "llama-anthropic", "model": "tiny", "context_window": 4096},
        },
        "routes": {"via-openai": ["tiny-openai"], "via-anthropic": ["tiny-anthropic"]},
    }
    folder: Path = tmp_path_factory.mktemp("cached")
    (folder / "tierwise.yaml").write_text(yaml.safe_dump(data))
    g = GatewayServer(make_config(data, folder)).start()
    try:
        yield {"g": g, "cfg": str(folder / "tierwise.yaml"), "ledger": str(folder / "ledger.db")}
    finally:
        g.stop()


def _twice(send: Any) -> str:
    send()  # fills llama-server's prompt cache (one slot: the next identical prompt reuses it)
    return str(send())


def _check(served: dict[str, Any], rid: str) -> None:
    served["g"].flush()
    rec = Ledger.open(served["ledger"]).get(rid)
    assert rec is not None
    assert rec.cache_read_tokens > 100, rec.to_dict()  # most of the long system prompt came from the cache
    assert rec.input_tokens < rec.cache_read_tokens
    total = rec.input_tokens + rec.cache_read_tokens
    out = CliRunner().invoke(cli, ["trace", "-c", served["cfg"], rid]).output
    assert f"{total} in ({rec.cache_read_tokens} cached) / {rec.output_tokens} out" in out, out


def test_openai_endpoint_cached_tokens_reach_the_ledger_and_trace(served: dict[str, Any]) -> None:
    client = served["g"].keep(openai.OpenAI(base_url=served["g"].url + "/v1", api_key="x", max_retries=0))
    msgs: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hello."}]

    def send() -> str:
        r = client.chat.completions.with_raw_response.create(model="via-openai", max_tokens=4, messages=msgs)
        return r.headers["x-tierwise-request-id"]

    _check(served, _twice(send))


def test_anthropic_endpoint_cached_tokens_reach_the_ledger_and_trace(served: dict[str, Any]) -> None:
    client = served["g"].keep(anthropic.Anthropic(base_url=served["g"].url, api_key="x", max_retries=0))

    def send() -> str:
        r = client.messages.with_raw_response.create(model="via-anthropic", max_tokens=4, system=SYSTEM,
                                                     messages=[{"role": "user", "content": "Say hello."}])
        return r.headers["x-tierwise-request-id"]

    _check(served, _twice(send))
