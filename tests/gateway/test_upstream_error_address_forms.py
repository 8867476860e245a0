"""Address forms the mask of upstream error text missed (wire10; providers/address_mask.py): an IPv4 address written
as one decimal or hex number, with octal or hex parts, short (`127.1`), with ideographic dots, mapped into IPv6
(`::ffff:10.0.0.1`), an IPv6 zone (`%eth0`), and a one-label host in a URL without a port (`http://vllm-0/v1`: a
compose or Kubernetes service). Whole numbers are masked only where an address stands (a URL's host, before a port,
a 32-bit hex number that is a private address): token counts and versions in the same text are kept. review33c: a URL
percent-encoded twice, a one-label host with the root's trailing dot, a name whose first label begins with a digit. Checked where
the mask runs: a provider's JSON error message (a 200 body here; wire9's tests cover each carrier), a proxy's plain
text error status, and an embeddings answer that is an error. Real HTTP, official SDKs."""

from __future__ import annotations

import openai
import orjson
import pytest

from tests.gateway.conftest import oai
from tests.gateway.upstream_errors import local_only, said_through

FORMS = [
    ("cannot reach http://2130706433/v1", ("2130706433",)),
    ("cannot reach http://0x7f000001:8080/v1", ("0x7f000001",)),
    ("connect to 0x7f000001 refused", ("0x7f000001",)),
    ("connect to 0x0A010203 refused", ("0x0A010203",)),
    ("connect to 2130706433:11434 refused", ("2130706433",)),
    ("connect to 0177.0.0.1 refused", ("0177", "0.0.1")),
    ("connect to 0x7f.0.0.1 refused", ("0x7f", "0.0.1")),
    ("cannot reach http://127.1:11434/api", ("127.1",)),
    ("cannot reach http://017700000001/", ("017700000001",)),
    ("connect to 10\u30021\u30022\u30023 refused", ("10\u3002",)),
    ("connect to ::ffff:10.0.0.1 refused", ("ffff", "10.0.0.1")),
    ("connect to [::ffff:10.0.0.1]:80 refused", ("ffff", "10.0.0.1")),
    ("connect to fe80::1%eth0 refused", ("fe80", "eth0")),
    ("cannot reach http://vllm-0/v1/chat", ("vllm-0",)),
    ("cannot reach http://ollama/api/chat", ("ollama",)),
    ("cannot reach http://svc@0x7f000001/", ("svc@", "0x7f000001")),
    # review33c: a URL percent-encoded twice (a parameter of a parameter: decoded once, `%2F%2F10.1.2.3` has no word
    # boundary before the address), and a host name with the root's trailing dot (a resolver reads `ollama.` as `ollama`)
    ("redirect failed: next=http%253A%252F%252F10.1.2.3%253A8080%252Fv1", ("10.1.2.3",)),
    ("connect to ollama.:11434 refused", ("ollama",)),
    ("cannot reach http://vllm-0.:8000/v1", ("vllm-0",)),
    # and a name whose first label begins with a digit: only its tail was masked (`10-[address]`, `3gpu.[address]`)
    ("connect to 10-ollama:11434 refused", ("10-",)),
    ("connect to 3gpu.pool:8000 refused", ("3gpu",)),
]
PROSE = ("used 4096 of 128000 tokens (2130706433 bytes, 167772161 steps); version 3.11.2, build 0x80004005 at 12:30; "
         "ratio 16:9; see https://docs.example.com/errors for more")


@pytest.mark.parametrize("said, hidden", FORMS, ids=[f[0][:40] for f in FORMS])
def test_address_forms_are_masked_in_a_providers_json_message(two_tier, openai_up, said, hidden):
    text = said_through(two_tier, openai_up, said, "json")
    assert "[address]" in text and said.split()[0] in text, text
    assert not any(h in text for h in hidden), text


@pytest.mark.parametrize("said, hidden", FORMS, ids=[f[0][:40] for f in FORMS])
def test_address_forms_are_masked_in_a_proxys_plain_text(two_tier, openai_up, said, hidden):
    text = said_through(two_tier, openai_up, said, "text")
    assert "[address]" in text and said.split()[0] in text, text
    assert not any(h in text for h in hidden), text


def test_an_embeddings_error_masks_the_forms(two_tier, openai_up):
    g = local_only(two_tier)
    openai_up.embeddings_raw = orjson.dumps({"object": "error", "message": "; ".join(s for s, _ in FORMS)})
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).embeddings.create(model="local", input="hi")
    text = e.value.response.text
    assert e.value.status_code == 502 and "[address]" in text, text
    assert not any(h in text for _, hs in FORMS for h in hs), text


def test_numbers_and_versions_in_prose_are_kept(two_tier, openai_up):
    text = said_through(two_tier, openai_up, PROSE, "json")
    assert PROSE in text and "[address]" not in text, text
