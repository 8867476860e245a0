"""A request no target may take — the remote refused by the privacy policy, the local one too small for it —
is answered as final (400 in the client's schema, each target's reason named), not as an outage.

It was a 503 `overloaded_error` ("every target failed"): Claude Code, like the SDKs, retries a 503, and with
`pii: redact` refusing its requests it sent the same doomed request again for three and a half minutes before
showing the error, which it then called "a server-side issue, usually temporary" (and a 403 it shows as "Failed
to authenticate"). Real HTTP, official SDKs, doubles upstream."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import privacy_config

FB = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
LONG = "Please write to jane.doe@example.com about the order. " + "The order details follow. " * 60


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB, policy={"pii": "local_only", "secrets": "block"})
    cfg["models"]["local"]["context_window"] = 200  # the request does not fit the local model
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


def test_anthropic_client_hears_a_final_refusal(g, anthropic_up, openai_up):
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": LONG}])
    msg = str(e.value)
    assert "local_only" in msg and "window" in msg, msg  # both targets' reasons
    assert not anthropic_up.requests and not openai_up.requests  # nothing was called


def test_openai_client_hears_a_final_refusal(g, anthropic_up):
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": LONG}])
    assert "local_only" in str(e.value)
    assert not anthropic_up.requests


def test_a_local_server_that_is_down_is_still_an_outage(gateway, openai_up, anthropic_up):
    """Only failures the same request would meet again make the answer final: a local server that does not
    answer may come back, and the client may retry (503)."""
    cfg = privacy_config("http://127.0.0.1:9", anthropic_up.url, FB, policy={"pii": "local_only", "secrets": "block"})
    cfg["server"]["default_route"] = "fb"
    with pytest.raises(anthropic.APIStatusError) as e:
        ant(gateway(cfg)).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": LONG}])
    assert e.value.status_code == 503
