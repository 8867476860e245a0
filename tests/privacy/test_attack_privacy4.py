"""Privacy attack round 4 (session 24, attack-privacy4): the fields the scan skipped as ids, and escapes
a reader undoes at sight that the detectors did not.

Real HTTP, the official SDKs, upstream doubles that record every body (`pii: redact`, `secrets: block`,
a fallback route remote -> local: a refused remote call is served locally). The remote must not receive
the value in any readable form; the client still gets an answer."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import ask_remote, found
from tests.privacy.test_attack_round2 import remote  # noqa: F401  (the fixture)

EMAIL = "jane.doe@example.com"


def _readable(raw: bytes) -> bool:
    """Does a recorded body hold the address in a form a reader takes at once (escaped with backslashes, spaced
    out, or with its `.`/`@` narrowed to `_` by an encoder that keeps ids to the upstream's alphabet)?"""
    text = raw.decode("utf-8", "replace").replace("\\", "")
    squeezed = text.replace(" ", "")  # spaced out: `j a n e . d o e`
    return "jane.doe" in squeezed or "jane_doe" in squeezed or "jane doe" in text or '"janedoe"@' in squeezed


def _no_leak(up: Any, sent: bool = True) -> None:
    assert up.requests or not sent, "the remote model got no request"
    for rec in up.requests:
        assert not _readable(rec.raw), rec.raw


# ---------------------------------------------------------------- keys the scan skipped as ids

# The body walk skipped every string under `id`, `signature`, `tool_use_id`, ... anywhere in the body
# (upstream-issued, high entropy: the secret detector would take them for keys). A client can write such
# a key where no API has one, and a same-format remote got the body byte for byte.
ANTHROPIC_OUT_OF_PLACE = {
    "message id": [{"role": "user", "content": "hello there", "id": EMAIL}],
    "message signature": [{"role": "user", "content": "hello there", "signature": EMAIL}],
}
OPENAI_OUT_OF_PLACE = {
    "message id": [{"role": "user", "content": "hello there", "id": EMAIL}],
    "text part id": [{"role": "user", "content": [{"type": "text", "text": "hello", "id": EMAIL}]}],
    "image_url id": [{"role": "user", "content": [{"type": "text", "text": "see"}, {
        "type": "image_url", "image_url": {"url": "https://example.org/a.png", "id": EMAIL}}]}],
}


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
@pytest.mark.parametrize("case", list(ANTHROPIC_OUT_OF_PLACE))
def test_an_id_key_where_the_api_has_none_is_scanned_anthropic(remote, case):  # noqa: F811
    g, up = remote
    assert ant(g).messages.create(model="fb", max_tokens=50, messages=ANTHROPIC_OUT_OF_PLACE[case]).content
    _no_leak(up)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
@pytest.mark.parametrize("case", list(OPENAI_OUT_OF_PLACE))
def test_an_id_key_where_the_api_has_none_is_scanned_openai(remote, case):  # noqa: F811
    g, up = remote
    assert oai(g).chat.completions.create(model="fb", messages=OPENAI_OUT_OF_PLACE[case]).choices[0].message.content
    _no_leak(up)


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_tool_definitions_id_is_scanned(remote):  # noqa: F811
    g, up = remote
    tool = {"name": "lookup", "description": "Look a contact up.", "id": EMAIL, "input_schema": {"type": "object"}}
    assert ant(g).messages.create(model="fb", max_tokens=50, tools=[tool],
                                  messages=[{"role": "user", "content": "hi"}]).content
    _no_leak(up)


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_a_tool_call_id_holding_an_address(remote):  # noqa: F811
    """Tool-call ids are the client's to write: one holding an address went out as written (same format), or
    narrowed to the upstream's alphabet (`jane_doe_example_com`, Responses -> Anthropic) where the leak check
    did not see it. Now such an id is redacted like text, and the call and its result keep one id."""
    g, up = remote
    if up is remote[1] and "anthropic" in type(up).__name__.lower():
        assert ant(g).messages.create(model="fb", max_tokens=50, messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": EMAIL, "name": "lookup", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": EMAIL, "content": "ok"}]}]).content
        body = json.loads(up.requests[-1].raw)
        assert body["messages"][1]["content"][0]["id"] == body["messages"][2]["content"][0]["tool_use_id"]
    else:
        assert oai(g).chat.completions.create(model="fb", messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": EMAIL, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": EMAIL, "content": "ok"}]).choices[0].message.content
        body = json.loads(up.requests[-1].raw)
        assert body["messages"][1]["tool_calls"][0]["id"] == body["messages"][2]["tool_call_id"]
    _no_leak(up)


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_responses_call_id_narrowed_for_anthropic(remote):  # noqa: F811
    g, up = remote
    assert oai(g).responses.create(model="fb", input=[
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": EMAIL, "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": EMAIL, "output": "ok"}]).output
    _no_leak(up)


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_thinking_signature_holding_an_address(remote):  # noqa: F811
    g, up = remote
    assert ant(g).messages.create(model="fb", max_tokens=50, messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": EMAIL},
                                          {"type": "text", "text": "ok"}]},
        {"role": "user", "content": "next"}]).content
    _no_leak(up)


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_real_ids_and_signatures_still_leave_as_sent(remote):  # noqa: F811
    """Ids and signatures shaped as providers issue them are not text: not scanned, forwarded unchanged."""
    g, up = remote
    tid, sig = "toolu_01A09q90qw90lq917835lq9", "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+" * 3
    if "anthropic" in type(up).__name__.lower():
        assert ant(g).messages.create(model="fb", max_tokens=50, messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": sig},
                                              {"type": "tool_use", "id": tid, "name": "lookup", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "ok"}]}]).content
        assert sig.encode() in up.requests[-1].raw
    else:
        assert oai(g).chat.completions.create(model="fb", messages=[
            {"role": "user", "content": "go", "id": "msg_0123abc"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": tid, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": tid, "content": "ok"}]).choices[0].message.content
        assert b"msg_0123abc" in up.requests[-1].raw
    assert up.requests[-1].raw.count(tid.encode()) == 2


# ---------------------------------------------------------------- escapes a reader undoes at sight

ESCAPED = {
    "regular expression": r"grep the log for jane\.doe@example\.com please",
    "perl string": 'my $to = "jane.doe\\@example.com"; send($to);',
    "markdown escapes": r"mail jane\_doe@example\.com today",
    "quoted-printable": "To: jane.doe=40example=2Ecom\nSubject: invoice",
    "quoted local part": 'write to "jane doe"@example.com today',
    "spaced out": "mail j a n e . d o e @ e x a m p l e . c o m today",
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(ESCAPED))
def test_escaped_addresses_do_not_leave(remote, case):  # noqa: F811
    g, up = remote
    text = ESCAPED[case]
    ask_remote(g, up, text)
    _no_leak(up)


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_regex_escaped_address_in_a_tool_schema_pattern(remote):  # noqa: F811
    """A schema's `pattern` is not rewritten (a placeholder would change what it matches): the leak check
    refuses the remote call and the local model answers."""
    g, up = remote
    tool = {"name": "lookup", "description": "Look a contact up.", "input_schema": {
        "type": "object", "properties": {"q": {"type": "string", "pattern": r"^jane\.doe@example\.com$"}}}}
    assert ant(g).messages.create(model="fb", max_tokens=50, tools=[tool],
                                  messages=[{"role": "user", "content": "hi"}]).content
    _no_leak(up, sent=False)


def test_the_escapes_do_not_eat_values_or_invent_them(det):
    """`=40` before a digit is a query string's value (`phone=4045551234`), not quoted-printable; `x=2E5`
    is a number; a backslash before other characters is left alone."""
    assert ("PHONE_NUMBER", "4045551234") in found(det, "lookup?phone=4045551234&x=1")
    assert found(det, "x=2E5 and y=40; path C:\\temp\\new") == []
    assert found(det, r"jane\.doe@example\.com") == [("EMAIL_ADDRESS", r"jane\.doe@example\.com")]
    assert found(det, 'say "hi" to "jane doe"@example.com') == [("EMAIL_ADDRESS", '"jane doe"@example.com')]
    # a quoted phrase before an ordinary address does not swallow the words between
    assert found(det, 'a "b" c jane@example.com') == [("EMAIL_ADDRESS", "jane@example.com")]
    assert re.fullmatch(r"<EMAIL_ADDRESS_\d+>", "<EMAIL_ADDRESS_1>")


# ---------------------------------------------------------------- the side endpoints

def test_count_tokens_with_an_id_key_out_of_place(gateway, openai_up, anthropic_up):
    """count_tokens sends the client's body as it is when the boundary would: an address under a message's
    `id` was not seen, so it was sent."""
    from tests.privacy.support import privacy_config

    g = gateway(privacy_config(openai_up.url, anthropic_up.url, {"main": ["frontier"], "f": ["frontier"]}))
    n = ant(g).messages.count_tokens(model="f", messages=[{"role": "user", "content": "hello there", "id": EMAIL}])
    assert n.input_tokens > 0  # tierwise's estimate
    assert not any(_readable(r.raw) for r in anthropic_up.requests)


def test_embeddings_of_escaped_addresses(gateway, openai_up):
    from tests.harness import two_tier_config
    from tests.privacy.support import privacy_config

    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": ["local"], "f": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["privacy"] = privacy_config("", "", {})["privacy"]
    g = gateway(cfg)
    e = oai(g).embeddings.create(model="f", input=list(ESCAPED.values()))
    assert len(e.data) == len(ESCAPED)
    sent = [r for r in openai_up.requests if r.path.endswith("/embeddings")]
    assert sent and not any(_readable(r.raw) for r in sent), sent[-1].raw


SPACED = {
    "US_SSN": ("SSN: 5 3 6 - 2 2 - 8 1 4 7 on file", "5 3 6 - 2 2 - 8 1 4 7"),
    "IBAN_CODE": ("pay to D E 8 9 3 7 0 4 0 0 4 4 0 5 3 2 0 1 3 0 0 0 today", "D E 8 9 3 7 0 4 0 0 4 4 0 5 3 2 0 1 3 0 0 0"),
    "IP_ADDRESS": ("my ip is 2 0 3 . 0 . 1 1 3 . 4 5 okay", "2 0 3 . 0 . 1 1 3 . 4 5"),
    "PHONE_NUMBER": ("call + 4 6 7 0 1 2 3 4 5 6 7 later", "+ 4 6 7 0 1 2 3 4 5 6 7"),
}


@pytest.mark.parametrize("entity", list(SPACED))
def test_values_with_a_space_between_every_character(det, entity):
    text, value = SPACED[entity]
    assert (entity, value) in found(det, text)


def test_a_spaced_run_longer_than_the_region_searched_is_found_whole(det):
    local = "j" * 90  # 180 characters spaced: the run starts before the region around its ` @ `
    spaced = " ".join(local + "@example.com")
    assert found(det, f"mail {spaced} today") == [("EMAIL_ADDRESS", spaced)]


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_a_spaced_out_ssn_and_iban_do_not_leave(remote):  # noqa: F811
    g, up = remote
    text = SPACED["US_SSN"][0] + "; " + SPACED["IBAN_CODE"][0]
    ask_remote(g, up, text)
    assert up.requests
    for rec in up.requests:
        squeezed = rec.raw.decode().replace(" ", "")
        assert "536-22-8147" not in squeezed and "DE89370400440532013000" not in squeezed, rec.raw


# ---------------------------------------------------------------- compression before the boundary

def test_compression_does_not_cut_an_address_in_two(gateway, openai_up, anthropic_up):
    """Context compression runs before the boundary and cut a sentence longer than a passage by characters:
    `jane.doe@` | `example.com`, neither piece an address, so the boundary found nothing and the kept piece
    left in clear (or both, joined by the compressor's gap marker, for the model to read back as one)."""
    from tests.privacy.support import echo_placeholders, privacy_config

    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"main": ["frontier"]})
    cfg["compression"] = {"routes": {"main": {"min_tokens": 100, "ratio": 2, "keep_last_turns": 0}}}
    g = gateway(cfg)
    head = ("contract renewal " * 40)[:581]  # the passage is 600 characters: its cut falls after the `@`
    line = '{"log": "' + head + " " + EMAIL + " contract renewal contract renewal " + "y" * 1500 + '"}'
    oai(g).chat.completions.create(model="main", messages=[
        {"role": "user", "content": line}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Who is the contract renewal about?"}])
    body = json.loads(anthropic_up.requests[-1].raw)
    assert "[…]" in body["messages"][0]["content"]  # compressed
    _no_leak(anthropic_up)


@pytest.mark.parametrize("text", [
    (" ".join("x" * 150) + " 1 2 3 4 5 6 ") * 300,  # one run through 300 digit windows
    "a @ " * 25_000,  # an ` @ ` every four characters
])
def test_the_spaced_search_is_linear_in_the_text(monkeypatch, text):
    """The first version searched around each digit window and each ` @ ` separately and followed a run from
    every one of them: quadratic (a 94 KB text of one spaced run ran for minutes). Now every character is
    searched a bounded number of times."""
    import tierwise.privacy.spaced as sp
    from tierwise.privacy.recognizers.prescan import Prescan

    searched: list[int] = []
    steps = [0]
    real, single = sp._RUN, sp._single

    class Counting:
        def search(self, s: str, pos: int, endpos: int) -> Any:
            searched.append(endpos - pos)
            return real.search(s, pos, endpos)

        def finditer(self, s: str, pos: int, endpos: int) -> Any:
            searched.append(endpos - pos)
            return real.finditer(s, pos, endpos)

    def counting_single(s: str, i: int) -> bool:
        steps[0] += 1
        return single(s, i)

    monkeypatch.setattr(sp, "_RUN", Counting())
    monkeypatch.setattr(sp, "_single", counting_single)
    runs = sp.spaced_runs(text, Prescan(text))
    assert runs == [(0, len(text) - 1)]
    assert sum(searched) <= 2 * len(text)  # linear (one window per stretch, and what follows a run)
    assert steps[0] <= len(text)  # each run followed once
