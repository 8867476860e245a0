"""An upstream's error carried in a 200 body or a stream's error event names internal hosts as often as an error
status does (LiteLLM or one-api in front of a model server: "cannot reach ollama:11434 at 10.1.2.3"). The client
hears it with those addresses masked, as it hears an error status's message (providers/error_pages.py), in both
directions of translation. Before (wire9), only an error status's message was masked. Real HTTP, official SDKs."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from tests.doubles import Raw, Reply, StreamError
from tests.gateway.conftest import ant, oai

SAID = "backend unreachable: ollama:11434 (10.1.2.3) via gpu-7.cluster.internal"
HOSTS = ("ollama:11434", "10.1.2.3", "gpu-7.cluster.internal")


def _gateway(two_tier, target: str):
    return two_tier(routes={"main": {"policy": "fallback", "targets": [target], "retries": 0}})


def _ask(g, api: str, stream: bool) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    if api == "openai":
        if stream:
            for _ in oai(g).chat.completions.create(model="main", messages=msgs, stream=True):
                pass
        else:
            oai(g).chat.completions.create(model="main", messages=msgs)
    elif stream:
        with ant(g).messages.stream(model="main", max_tokens=50, messages=msgs) as s:
            for _ in s:
                pass
    else:
        ant(g).messages.create(model="main", max_tokens=50, messages=msgs)


def _said(g, api: str, stream: bool) -> str:
    with pytest.raises((openai.APIError, anthropic.APIError)) as e:
        _ask(g, api, stream)
    body = getattr(e.value, "body", None)
    return orjson.dumps(body).decode() if body is not None else str(e.value)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_openai_upstreams_error_in_a_200_masks_its_hosts(two_tier, openai_up, api, stream):
    g = _gateway(two_tier, "local")
    if stream:
        openai_up.script(StreamError(after_chunks=2, data={"error": {"message": SAID}}, then=Reply(text="a b c d")))
    else:
        openai_up.script(Raw(body=orjson.dumps({"error": {"message": SAID}})))
    text = _said(g, api, stream)
    assert "[address]" in text and "backend unreachable" in text, text
    assert not any(h in text for h in HOSTS), text


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_anthropic_upstreams_error_event_or_body_masks_its_hosts(two_tier, anthropic_up, api, stream):
    g = _gateway(two_tier, "frontier")
    error = {"type": "error", "error": {"type": "overloaded_error", "message": SAID}}
    if stream:
        anthropic_up.script(StreamError(after_chunks=4, data=error, then=Reply(text="a b c d e f")))
    else:
        anthropic_up.script(Raw(body=orjson.dumps(error)))
    text = _said(g, api, stream)
    assert "[address]" in text and "backend unreachable" in text, text
    assert not any(h in text for h in HOSTS), text


def test_an_embeddings_answer_that_is_an_error_masks_its_hosts(two_tier, openai_up):
    """The same words in a 200 answer to `/v1/embeddings` (server/deployment_endpoints.py): scrubbed before, not
    masked."""
    g = _gateway(two_tier, "local")
    openai_up.embeddings_raw = orjson.dumps({"object": "error", "message": SAID})
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).embeddings.create(model="local", input="hi")
    text = e.value.response.text
    assert e.value.status_code == 502 and "[address]" in text and "backend unreachable" in text, text
    assert not any(h in text for h in HOSTS), text


@pytest.mark.parametrize("said, hidden", [
    # a proxy quoting the URL it could not reach, percent-encoded (a redirect or callback parameter)
    ("upstream failed: target=http%3A%2F%2F10.1.2.3%3A8080%2Fv1 unreachable", ("10.1.2.3", "10%2E1")),
    ("upstream failed: host=10%2E1%2E2%2E3 unreachable", ("10.1.2.3", "10%2E1%2E2%2E3")),
    # the credentials of a URL: the password was scrubbed, the user name (often a service account) was not
    ("upstream failed: cannot reach http://svc-llm-admin:pw0rd123@ollama:11434/api", ("svc-llm-admin", "ollama")),
])
def test_encoded_addresses_and_a_urls_user_are_masked(two_tier, openai_up, said, hidden):
    """review32c: forms the mask missed (wire9 masked plain IPv4/IPv6, `host:port` and private names)."""
    g = _gateway(two_tier, "local")
    openai_up.script(Raw(body=orjson.dumps({"error": {"message": said}})))
    text = _said(g, "openai", False)
    assert "upstream failed" in text and "[address]" in text, text
    assert not any(h in text for h in hidden), text
