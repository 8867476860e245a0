"""Internal addresses the mask of upstream error text (providers/address_mask.py) missed when written encoded (wire11):
JSON escapes left in a message (a nested error's JSON quoted as a string: `10\\u002e0\\u002e0\\u002e1`, `http:\\/\\/`),
HTML character references (`&#46;`, `&period;`, `&#x2e;`, `&colon;`, `&amp;#46;`), characters no reader shows inside an
address (zero-width space and joiners, soft hyphen, word joiner: `1<ZWSP>0.0.0.1` left `1` and masked the wrong
address), and compatibility forms a URL parser folds (`․`, one dot leader). Checked on both carriers: a provider's JSON
message and a proxy's plain text. Real HTTP, official SDK."""

from __future__ import annotations

import openai
import orjson
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai

FORMS = [
    ("connect to 10\\u002e0\\u002e0\\u002e1 refused", ("10\\u002e", "0\\u002e1")),
    ("cannot reach http:\\u002f\\u002fvllm-0\\u002fv1", ("vllm-0",)),
    ("connect to 10\\\\u002e1\\\\u002e2\\\\u002e3 refused", ("u002e",)),
    ("connect to 10&#46;0&#46;0&#46;1 refused", ("10&#46;", "&#46;1")),
    ("connect to 10&period;0&period;0&period;1 refused", ("&period;",)),
    ("connect to 10&#x2e;1&#x2E;2&#x2e;3 refused", ("&#x2e;",)),
    ("connect to &#x31;&#x30;.0.0.1 refused", ("&#x31;", "0.0.1")),
    ("connect to 10&amp;#46;1.2.3 refused", ("#46;",)),
    ("connect to ollama&colon;11434 refused", ("ollama",)),
    ("connect to fd00&#58;&#58;1 refused", ("fd00",)),
    ("connect to ip&#45;10-1-2-3 refused", ("10-1-2-3",)),
    ("connect to 1\u200b0.0.0.1 refused", ("1\u200b", "0.0.1")),
    ("connect to 10.0\u200c.0.1 refused", ("10.0", "0.1")),
    ("connect to 10\u00ad.0.0.1 refused", ("10\u00ad", "0.0.1")),
    ("connect to 10.0.0\u2060.1:8080 refused", ("10.0.0", "8080")),
    ("connect to 10\u20240.0.1 refused", ("10\u2024",)),
]


def _said(g) -> str:
    with pytest.raises(openai.APIError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    body = getattr(e.value, "body", None)
    return str(body.get("message")) if isinstance(body, dict) else str(e.value)  # (the message as the client reads it)


def _gateway(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


@pytest.mark.parametrize("said, hidden", FORMS, ids=[repr(f[0][11:34]) for f in FORMS])
def test_encoded_addresses_are_masked_in_a_providers_json_message(two_tier, openai_up, said, hidden):
    g = _gateway(two_tier)
    openai_up.script(Raw(body=orjson.dumps({"error": {"message": said}})))
    text = _said(g)
    assert "[address]" in text and said.split()[0] in text, text
    assert not any(h in text for h in hidden), text


@pytest.mark.parametrize("said, hidden", FORMS, ids=[repr(f[0][11:34]) for f in FORMS])
def test_encoded_addresses_are_masked_in_a_proxys_plain_text(two_tier, openai_up, said, hidden):
    g = _gateway(two_tier)
    openai_up.script(Raw(status=502, body=said.encode(), content_type="text/plain"))
    text = _said(g)
    assert "[address]" in text and said.split()[0] in text, text
    assert not any(h in text for h in hidden), text


def test_text_that_only_looks_encoded_is_kept(two_tier, openai_up):
    """A backslash, an ampersand and a percent sign in prose are not addresses: the words around them survive."""
    g = _gateway(two_tier)
    prose = "rate 50% of quota; R&D tier; path C:\\models\\qwen; 4096 tokens at 12:30"
    openai_up.script(Raw(body=orjson.dumps({"error": {"message": prose}})))
    text = _said(g)
    assert "[address]" not in text and "R&D tier" in text and "4096 tokens at 12:30" in text, text
