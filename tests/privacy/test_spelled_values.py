"""An e-mail address spelled out to get past scrapers (`jane dot doe at example dot com`,
`jane.doe [at] example [dot] com`) is read back by any model at once: it is an address to the
boundary too. Real HTTP, official SDKs, a recording remote double on a `pii: redact` route."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import echo_placeholders, found, privacy_config

SPELLED = [
    "jane dot doe at example dot com",
    "jane.doe [at] example [dot] com",
    "jane.doe(at)example.com",
    "J.Doe {AT} mail.example {DOT} de",
]


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}})
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


@pytest.mark.parametrize("spelled", SPELLED)
def test_a_spelled_out_address_does_not_leave_and_comes_back(g, anthropic_up, spelled):
    answer = oai(g).chat.completions.create(model="fb", messages=[
        {"role": "user", "content": f"Write to {spelled} about the invoice."}]).choices[0].message.content or ""
    raw = anthropic_up.requests[-1].raw.decode()
    assert spelled not in raw and "<EMAIL_ADDRESS_1>" in raw
    assert spelled in answer  # the echoed placeholder is restored


def test_a_spelled_out_address_in_a_streamed_anthropic_tool_result(g, anthropic_up):
    spelled = SPELLED[0]
    with ant(g).messages.stream(model="fb", max_tokens=100, messages=[
        {"role": "user", "content": "Who owns the account?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1",
                                      "content": f"owner: {spelled}"}]}],
            tools=[{"name": "lookup", "input_schema": {"type": "object"}}]) as s:
        text = "".join(s.text_stream)
    assert spelled not in anthropic_up.requests[-1].raw.decode()
    assert spelled in text


@pytest.mark.parametrize("prose", [
    "Look at this dot com bubble chart.",
    "Point at the dot it shows on the map.",
    "She works at a startup; meet me at noon.",
    "The dot product of a and b.",
    "Click (at) most twice.",
])
def test_prose_with_at_and_dot_is_not_an_address(det, prose):
    assert [e for e, _ in found(det, prose) if e == "EMAIL_ADDRESS"] == []


def test_spelled_addresses_are_found_whole(det):
    for s in SPELLED:
        assert found(det, f"mail: {s}.") == [("EMAIL_ADDRESS", s)]
