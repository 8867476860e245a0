"""wire13 (review35b's left): after a version's cue (`version`, `ver`, `rev`) any four-part number was kept by the
upstream-error mask (providers/address_words.py), so a private address there reached the client whole: a proxy's
`upstream rev 10.0.0.5 unreachable`, `server version: 192.168.1.7` (a field a misconfigured status page fills with the
host). After those cues only a number that is no private address is kept now, as after a requirement's operator or
`release`; real versions stay. Both carriers (a provider's JSON message, a proxy's plain text), real HTTP, the SDK."""

from __future__ import annotations

import pytest

from tests.gateway.upstream_errors import said_through

MASKED = [
    ("upstream rev 10.0.0.5 unreachable", "10.0.0.5"),
    ("server version: 192.168.1.7", "192.168.1.7"),
    ("ver=172.16.4.2 refused", "172.16.4.2"),
    ("backend version 127.0.0.1 is down", "127.0.0.1"),
]
KEPT = ["vllm version 0.6.3.4 could not load the model", "transformers version: 4.46.0.1 raised", "rev 2.1.0.7 failed"]


@pytest.mark.parametrize("carrier", ["json", "text"])
@pytest.mark.parametrize("said, hidden", MASKED, ids=[m[0][:30] for m in MASKED])
def test_a_private_address_after_a_version_word_is_masked(two_tier, openai_up, carrier, said, hidden):
    text = said_through(two_tier, openai_up, said, carrier)
    assert "[address]" in text and hidden not in text, text


@pytest.mark.parametrize("carrier", ["json", "text"])
@pytest.mark.parametrize("said", KEPT, ids=[k[:30] for k in KEPT])
def test_versions_after_a_version_word_are_kept(two_tier, openai_up, carrier, said):
    text = said_through(two_tier, openai_up, said, carrier)
    assert said in text and "[address]" not in text, text
