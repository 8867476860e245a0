"""Privacy attack round 2 (session 21): vectors that reached a recording remote double before their fix.

Real HTTP, the official SDKs, upstream doubles that record every body; the remote must not receive the
value, and the client still gets an answer (the local tier serves when the remote call is refused)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import oai
from tests.privacy.support import echo_placeholders, privacy_config

EMAIL = "jane.doe@example.com"
FB = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}


@pytest.fixture
def remote(request, gateway, openai_up, anthropic_up):
    """(gateway, the remote double): the remote (frontier) model speaks OpenAI Chat or Anthropic Messages,
    the local one the other format."""
    openai_up.default = anthropic_up.default = echo_placeholders
    if request.param == "openai":
        cfg = privacy_config(anthropic_up.url, openai_up.url, FB)
        cfg["providers"]["localsrv"].update(kind="anthropic", base_url=anthropic_up.url)
        cfg["providers"]["cloud"].update(kind="openai", base_url=openai_up.url + "/v1")
        up = openai_up
    else:
        cfg = privacy_config(openai_up.url, anthropic_up.url, FB)
        up = anthropic_up
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg), up


def _image(url: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "input_text", "text": "describe it"},
                                         {"type": "input_image", "image_url": url, **extra}]}]


PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
IMAGE_CASES = {
    # OpenAI's `detail` is forwarded as the client wrote it (any string)
    "detail": _image(PNG, detail=EMAIL),
    # a data: URL that is not base64 is text: it left as written, in the image's `data`
    "svg-data-url": _image(f"data:image/svg+xml,<svg><text>{EMAIL}</text></svg>"),
    "plain-data-url": _image(f"data:text/plain,{EMAIL}"),
    # the media type of a data: URL travels too
    "media-type": _image(f"data:image/{EMAIL};base64,iVBORw0KGgo="),
}


@pytest.mark.parametrize(("remote", "case"), [
    (side, case) for case in IMAGE_CASES for side in ("openai", "anthropic")
    if not (case == "detail" and side == "anthropic")  # Anthropic's image has no `detail`: the encoder drops it
], indirect=["remote"])
def test_responses_image_fields_do_not_reach_the_remote(remote, case):
    """A Responses request has no byte pass-through, so only the canonical image was scanned: its URL,
    not its `detail`, media type or a plain-text payload."""
    g, up = remote
    r = oai(g).responses.create(model="fb", input=IMAGE_CASES[case])
    assert r.output_text  # served: by the local tier once the remote call is refused
    assert all(EMAIL.encode() not in rec.raw for rec in up.requests)


TEXT_AS_BASE64 = f"Contact {EMAIL} about the invoice"  # a client that forgot to encode its file
PAYLOAD_CASES: dict[str, dict[str, Any]] = {
    "anthropic-document": {"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": TEXT_AS_BASE64}},
        {"type": "text", "text": "summarise"}]},
    "openai-file": {"role": "user", "content": [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"filename": "a.txt", "file_data": f"data:text/plain;base64,{TEXT_AS_BASE64}"}}]},
    "openai-audio": {"role": "user", "content": [
        {"type": "text", "text": "transcribe"},
        {"type": "input_audio", "input_audio": {"data": TEXT_AS_BASE64, "format": "wav"}}]},
}


@pytest.mark.parametrize(("remote", "case"), [("anthropic", "anthropic-document"), ("openai", "openai-file"),
                                              ("openai", "openai-audio")], indirect=["remote"])
def test_text_labelled_base64_is_not_skipped_as_a_payload(remote, case):
    """Base64 payloads are not scanned (docs/privacy.md); a payload with characters base64 has not is
    text as written, and it reached a same-format remote byte for byte."""
    g, up = remote
    msg = PAYLOAD_CASES[case]
    if case.startswith("anthropic"):
        from tests.gateway.conftest import ant

        assert ant(g).messages.create(model="fb", max_tokens=50, messages=[msg]).content
    else:
        assert oai(g).chat.completions.create(model="fb", messages=[msg]).choices[0].message.content
    assert up.requests, "the remote model got no request"
    assert all(EMAIL.encode() not in rec.raw for rec in up.requests)


@pytest.mark.parametrize("stream", [False, True])
def test_a_value_only_the_local_model_detector_finds_is_not_cached_in_clear(gateway, openai_up, anthropic_up,
                                                                           tmp_path, stream):
    """The answer cache skips a request holding a protected value, but asked before the call, when only
    the structured detectors (and NER) have read it: a name only `llm_detector` finds was redacted for the
    remote model and its restored answer then stored in clear (a sqlite file, a shared Redis) and served
    again. Now the guard's verdict after the crossing counts too."""
    from tests.privacy.test_llm_detector import MSG, NAME, spans_brain

    openai_up.default = spans_brain
    anthropic_up.default = echo_placeholders
    db = tmp_path / "answers.db"
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {"solo": {"policy": "fallback", "targets": ["frontier"], "retries": 0}},
                         ner={"enabled": False, "heuristics": False},
                         llm_detector={"enabled": True, "model": "local", "timeout_s": 5})
    cfg["cache"] = {"enabled": True, "backend": "sqlite", "sqlite_path": str(db), "routes": {"solo": {}}}
    cfg["server"]["default_route"] = "solo"
    g = gateway(cfg)
    seen = []
    for _ in range(2):
        raw = oai(g).chat.completions.with_raw_response.create(
            model="solo", temperature=0, messages=[{"role": "user", "content": MSG}], stream=stream)
        got = raw.parse()
        text = ("".join(c.choices[0].delta.content or "" for c in got if c.choices) if stream
                else got.choices[0].message.content or "")
        assert NAME in text  # restored for the client
        seen.append(raw.headers["x-tierwise-cache"])
    assert all(NAME.encode() not in r.raw for r in anthropic_up.requests)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("answers.db*"))
    assert NAME.encode() not in stored
    assert len(anthropic_up.requests) == 2, seen  # the second request was not served from the cache


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_anthropic_version_header_is_forwarded_only_as_a_version(remote):
    """Anthropic upstreams get the client's `anthropic-version` header; headers are not scanned, so any text
    in it reached the remote as written. Only a date passes now; otherwise the upstream gets the default."""
    from tests.gateway.conftest import ant

    g, up = remote
    for version in (EMAIL, "2023-06-01"):
        r = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": "hello"}],
                                   extra_headers={"anthropic-version": version})
        assert r.content
    sent = [rec.headers.get("anthropic-version") for rec in up.requests]
    assert sent == ["2023-06-01", "2023-06-01"]


def test_a_chat_image_with_a_text_data_url_does_not_leave_on_a_cascade_escalation(gateway, openai_up, anthropic_up):
    """A Chat Completions client's body is walked only while the request still carries it; a cascade's
    `with_draft` escalation is a new request (the body dropped), whose canonical image kept the text of a
    data: URL that is not base64 as its `data`: it reached the remote model as written."""
    from tests.doubles import Reply

    anthropic_up.default = echo_placeholders
    openai_up.default = Reply(text="local draft")
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"c": {
        "policy": "cascade", "tiers": ["local", "frontier"], "escalation_context": "with_draft",
        "verifiers": [{"type": "regex", "pattern": "NEVER MATCHES"}]}})
    cfg["server"]["default_route"] = "c"
    g = gateway(cfg)
    image = {"type": "image_url", "image_url": {"url": f"data:image/svg+xml,<svg><text>{EMAIL}</text></svg>"}}
    r = oai(g).chat.completions.create(model="c", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what does it say?"}, image]}])
    assert r.choices[0].message.content
    assert all(EMAIL.encode() not in rec.raw for rec in anthropic_up.requests)
