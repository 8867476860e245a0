"""review35b: wire12's kept words (providers/address_words.py) let internal addresses through in shapes a misconfigured
upstream or the proxy in front of it really writes: aiohttp's `Cannot connect to host index:9200 ssl:default` and Go's
`dial tcp batch:8000` (a service named like a field word), a `svc.namespace:port` whose namespace is a file suffix,
a private address after a requirement operator (`host==10.0.0.5`, `ip != 192.168.1.7`) or after `release` (CNI IPAM:
`failed to release 10.244.1.5`), tcpdump's and BSD netstat's `10.0.0.5.8000` (a "fifth part"), an address after a
software word that names a machine (`node 34.120.1.2`), an octal part inet_aton reads (`vllm 012.0.0.5` is 10.0.0.5).
Both carriers (a provider's JSON message, a proxy's plain text), real HTTP, the official SDK. What wire12 keeps stays
kept (tests/gateway/test_upstream_error_harmless_words.py)."""

from __future__ import annotations

import openai
import orjson
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai

LEAKS = [
    ("Cannot connect to host index:9200 ssl:default [Connection refused]", "index:9200"),
    ("Cannot connect to host quota:8080 ssl:default", "quota:8080"),
    ('Post "http://x/v1": dial tcp batch:8000: connect: connection refused', "batch:8000"),
    ("cannot connect to postgres.sql:5432", "postgres.sql:5432"),
    ("no upstream matched host==10.0.0.5", "10.0.0.5"),
    ("rejected: source ip != 192.168.1.7", "192.168.1.7"),
    ("failed to release 10.244.1.5 for pod web-0", "10.244.1.5"),
    ("capture: 10.0.0.5.8000 > 10.0.0.6.443 reset", "10.0.0.5"),
    ("capture: 10.0.0.5.8000 > 10.0.0.6.443 reset", "10.0.0.6"),
    ("route 1.10.0.0.5 rejected", "10.0.0.5"),
    ("node 34.120.1.2 is not ready", "34.120.1.2"),
    ("vllm 012.0.0.5 refused the model", "012.0.0.5"),
]


def _said(g) -> str:
    with pytest.raises(openai.APIError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    body = getattr(e.value, "body", None)
    return orjson.dumps(body).decode() if body is not None else str(e.value)


@pytest.mark.parametrize("carrier", ["json", "text"])
@pytest.mark.parametrize("said, hidden", LEAKS, ids=[f"{s[:36]}-{h}" for s, h in LEAKS])
def test_an_address_in_a_kept_words_shape_is_masked(two_tier, openai_up, carrier, said, hidden):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    if carrier == "json":
        openai_up.script(Raw(body=orjson.dumps({"error": {"message": said}})))
    else:
        openai_up.script(Raw(status=502, body=said.encode(), content_type="text/plain"))
    text = _said(g)
    assert "[address]" in text and hidden not in text, text
