"""Words of an upstream's error text that look like addresses but are not (wire12; providers/address_words.py).
review34c left them masked: a four-part version (`vllm 0.6.3.4`), a source position (`/src/ggml-cuda.cu:70`,
`tokenizer.json:12`), a field and its number (`length:4096`, `minute:60`, `code:400`), so the client lost what went
wrong. Kept now where their context says what they are; the addresses and hosts next to them in the same shapes are
still masked. Both carriers (a provider's JSON message, a proxy's plain text), real HTTP, the official SDK."""

from __future__ import annotations

import pytest

from tests.gateway.upstream_errors import said_through

KEPT = [
    "vllm 0.6.3.4 could not load the model",
    "transformers 4.46.0.1 raised ValueError",
    "requires transformers==4.46.0.1",
    "server vllm/0.6.3.4 refused the schema",
    "tensor 1.2.3.4.5 mismatch",
    "CUDA error at /app/ggml/src/ggml-cuda.cu:70: out of memory",
    "bad token in tokenizer.json:12",
    "panic at src/main.rs:42:7",
    "input length:4096 exceeds the window",
    "limit per minute:60 reached",
    "upstream code:400 invalid request",
]
MASKED = [
    ("vllm 10.0.0.5 refused", "10.0.0.5"),  # a software name before a private address
    ("connect to 4.46.0.1 refused", "4.46.0.1"),  # no version's cue
    ("vllm 0.6.3.4:8000 refused", "0.6.3.4"),  # a port
    ("connect to ggml-cuda.cu:70 refused", "ggml-cuda.cu"),  # a country domain's host without a file's context
    ("connect to evil.rs:8000 refused", "evil.rs"),
    ("connect to api.example.com.py:8443 refused", "example.com.py"),
    ("connect to ollama:11434 refused", "ollama"),
    ("connect to status:8080 refused", "status:8080"),  # a service named `status`, not a status code
    ("connect to code:443 refused", "code:443"),
]


@pytest.mark.parametrize("carrier", ["json", "text"])
@pytest.mark.parametrize("said", KEPT, ids=[k[:40] for k in KEPT])
def test_versions_source_positions_and_fields_are_kept(two_tier, openai_up, carrier, said):
    text = said_through(two_tier, openai_up, said, carrier)
    assert said in text and "[address]" not in text, text


@pytest.mark.parametrize("carrier", ["json", "text"])
@pytest.mark.parametrize("said, hidden", MASKED, ids=[m[0][:40] for m in MASKED])
def test_addresses_in_the_same_shapes_are_still_masked(two_tier, openai_up, carrier, said, hidden):
    text = said_through(two_tier, openai_up, said, carrier)
    assert "[address]" in text and hidden not in text, text
