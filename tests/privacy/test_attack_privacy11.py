"""Privacy attack round 11 (session 31, privacy11): round 10's leftovers and the places a value can leave by.

- base64 five times (privacy/encoded.py: one level more);
- an SSN, a phone number or an IPv4 address glued to a word in a file name or an id (`tax536228147.pdf`,
  `call_+14155552671.wav`, `host203.0.113.45`): after its own word, or a phone in international form after any;
- a card written with a bar between its digits (`5|2|0|0|...`), as a table row would be;
- a phone after a numbered list's mark (`1. 089/1234567`);
- no phone numbers in decimals, ratios, ranges of round amounts or `0123456789` (GSM8K, QQP, the standard library);
- a route's own `privacy.routes` rule when the route runs inside another route (a fallback's target, a reflective
  route's judge): it ran under the outer route's policy (privacy/route_rule.py).

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import SEEDS, ask_remote, assert_none_sent, found, privacy_config

EMAIL = SEEDS["EMAIL_ADDRESS"]


def b64(s: str, times: int) -> str:
    for _ in range(times):
        s = base64.b64encode(s.encode()).decode()
    return s


# text -> (entity, the text it must cover)
SHAPES = {
    "base64 five times": (f"blob {b64('mail jane.doe@example.com', 5)} end", "EMAIL_ADDRESS", None),
    "a card in base64 five times": (f"blob {b64('card 4111 1111 1111 1111', 5)} end", "CREDIT_CARD", None),
    "an SSN glued to its tax word": ("see tax536228147.pdf", "US_SSN", "536228147"),
    "an SSN glued with an underscore": ("file ssn_536228147.txt", "US_SSN", "536228147"),
    "an international phone glued to a word": ("call_+14155552671.wav", "PHONE_NUMBER", "+14155552671"),
    "an international phone glued with a plus": ("voicemail+14155552671.mp3", "PHONE_NUMBER", "+14155552671"),
    "a phone glued to its word": ("cell4155552671 ok", "PHONE_NUMBER", "4155552671"),
    "a dashed phone glued to a word": ("rec415-555-2671.wav", "PHONE_NUMBER", "415-555-2671"),
    "an IP glued to host": ("host203.0.113.45 is down", "IP_ADDRESS", "203.0.113.45"),
    "an IP glued to ip": ("from ip203.0.113.45", "IP_ADDRESS", "203.0.113.45"),
    "a card with a bar between digits": ("card 5|2|0|0|8|2|8|2|8|2|8|2|8|2|1|0", "CREDIT_CARD",
                                         "5|2|0|0|8|2|8|2|8|2|8|2|8|2|1|0"),
    "a card with bars in groups": ("pay 4|1|1|1 1|1|1|1 1|1|1|1 1|1|1|1", "CREDIT_CARD",
                                   "4|1|1|1 1|1|1|1 1|1|1|1 1|1|1|1"),
    "a phone after a list mark": ("1. 089/1234567", "PHONE_NUMBER", "089/1234567"),
    "phones in a numbered list": ("Contacts:\n1. 089/1234567\n2. 030/1234567", "PHONE_NUMBER", "089/1234567"),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_round_11_shapes_are_found(det, case):
    text, entity, covered = SHAPES[case]
    got = found(det, text)
    assert any(e == entity and (covered is None or v == covered) for e, v in got), got


NOT_PHONES = {
    "a decimal": "the ratio is 1.00000003 here",
    "a salary range": "salary range 29100-54500 per year",
    "a salary range with spaces": "Salary: 45000 - 60000 USD",
    "the digits in order": "digits 0123456789",
    "the digits in order backwards": "9876543210 liftoff",
    "a ratio": "she ate 2000/1000 of them",
    "a range of thousands": "which mobile is best in range of 8000-10000?",
    "an amount after a currency sign": "The brokerage fee is $350 000 x 5/100 = $17500",
    "a sum of amounts": "$<<6000-600-150-1200-2000=2050>>2050",
}


@pytest.mark.parametrize("case", list(NOT_PHONES))
def test_numbers_that_are_no_phones(det, case):
    assert [f for f in found(det, NOT_PHONES[case]) if f[0] == "PHONE_NUMBER"] == []


STILL_FOUND = {
    "a phone with its word, shaped like a range": ("call me at 41500-55500", "PHONE_NUMBER"),
    "a German number with a slash": ("Tel 030/1234567", "PHONE_NUMBER"),
    "a dotted phone": ("415.555.2671", "PHONE_NUMBER"),
    "a phone after a list mark without a 0": ("1. 415 555 2671", "PHONE_NUMBER"),
    "an Indian mobile number": ("+91 98765-43210", "PHONE_NUMBER"),
    "an IP apart": ("server at 203.0.113.45", "IP_ADDRESS"),
    "a toll-free number with its 1": ("Call USA @@ 1-877-778-8969 now", "PHONE_NUMBER"),
    "a spaced SSN after its word": ("SSN 536-22-8147", "US_SSN"),
}


@pytest.mark.parametrize("case", list(STILL_FOUND))
def test_values_near_those_shapes_are_still_found(det, case):
    text, entity = STILL_FOUND[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


NOT_VALUES = {
    "a version glued to a name": "python3.10.1.2 and gcc4.8.5.1",
    "a version after v": "release v1.2.3.4",
    "flags joined by bars": "mode = 4|1|1|1|1|1|1|1|1|1|1|1|1|1|1|1",
    "a table row of digits": "|1|2|3|4|5|6|7|8|9|0|1|2|3|4|5|6|",
    "a sum glued to a variable": "x+1000000000",
    "an order number glued to a word": "order4155552671",
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_round_11_views_invent_no_value(det, case):
    assert [f for f in found(det, NOT_VALUES[case]) if f[0] not in {"SECRET", "DATE_TIME", "URL", "PERSON"}] == []


@pytest.mark.parametrize("text", ["call_+1415555267" * 4096, "host1.2.3." * 6000, "5|2|" * 8000,
                                  "1. 0" * 8000, "tax53622814" * 4096])
def test_round_11_views_return_on_hostile_text(det, text):
    det.scan(text)  # linear: the suite's timeout is the guard


LEAKY = {
    "base64 five times": (b64("mail jane.doe@example.com", 5), [b64("mail jane.doe@example.com", 5)]),
    "glued SSN": ("my scan is tax536228147.pdf", ["536228147"]),
    "glued phone": ("the message is in call_+14155552671.wav", ["14155552671"]),
    "glued IP": ("the log says host203.0.113.45 failed", ["203.0.113.45"]),
    "bars between digits": ("my card is 5|2|0|0|8|2|8|2|8|2|8|2|8|2|1|0", ["5|2|0|0|8|2|8|2|8|2|8|2|8|2|1|0"]),
    "list mark": ("Numbers:\n1. 089/1234567", ["089/1234567"]),
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_round_11_shapes_do_not_leave(remote, case):
    g, up = remote
    text, parts = LEAKY[case]
    ask_remote(g, up, text)
    assert_none_sent(up, parts)


# ---------------------------------------------------------------------------- a route inside a route

def _remote_calls(up) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [r.raw for r in up.requests if r.path.endswith("/messages")]


@pytest.mark.parametrize("stream", [False, True])
def test_a_route_s_rule_holds_when_another_route_falls_back_to_it(gateway, openai_up, anthropic_up, stream):
    """main = inner, then local; only `inner` has a rule (`pii: local_only`), `policy` allows pii. Before: the e-mail
    address reached `inner`'s remote model as written through `main`."""
    openai_up.default = Reply(text="local answer")
    routes = {"main": {"policy": "fallback", "targets": ["inner", "local"], "retries": 0}, "inner": ["frontier"]}
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, routes, policy={"pii": "allow", "secrets": "block"},
                               route_policy={"inner": {"pii": "local_only"}}))
    text = f"Write to {EMAIL} about the invoice"
    if stream:
        with ant(g).messages.stream(model="main", max_tokens=50, messages=[{"role": "user", "content": text}]) as s:
            assert "".join(s.text_stream) == "local answer"
    else:
        r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": text}])
        assert r.choices[0].message.content == "local answer"
    assert _remote_calls(anthropic_up) == []
    # text without protected values still takes `inner`
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hello there"}])
    assert len(_remote_calls(anthropic_up)) == 1


def test_the_outer_route_s_own_remote_target_keeps_the_outer_policy(gateway, openai_up, anthropic_up):
    """main = strict, then frontier: `strict`'s rule holds inside `strict` only; `main`'s next target is sent as
    `main`'s policy says (pii allowed)."""
    routes = {"main": {"policy": "fallback", "targets": ["strict", "frontier"], "retries": 0},
              "strict": ["local2"]}
    cfg = privacy_config(openai_up.url, anthropic_up.url, routes, policy={"pii": "allow", "secrets": "block"},
                         route_policy={"strict": {"pii": "local_only"}})
    cfg["models"]["local2"] = dict(cfg["models"]["frontier"])  # a second remote model only `strict` reaches
    g = gateway(cfg)
    text = f"Write to {EMAIL} about the invoice"
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": text}])
    [sent] = _remote_calls(anthropic_up)  # `strict` refused it, `frontier` had it as written
    assert EMAIL.encode() in sent


def test_a_judge_route_s_rule_holds_for_the_learning_loop_s_judge_calls(gateway, openai_up, anthropic_up):
    """A reflective route whose judge is a route with `pii: local_only`: the judge prompt (the user's request and the
    local answer, both holding the address) went to the remote judge under the reflective route's policy."""
    openai_up.default = Reply(text=f"Dear {EMAIL}, here is your haiku")
    anthropic_up.default = Reply(text="A haiku.\nVERDICT: good")
    routes = {"main": {"policy": "reflective", "local": "local", "frontier": "frontier", "judge": "strict"},
              "strict": ["frontier"]}
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, routes, policy={"pii": "allow", "secrets": "block"},
                               route_policy={"strict": {"pii": "local_only"}}))
    for _ in range(3):
        oai(g).chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"Write to {EMAIL} a haiku"}])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(openai_up.requests) < 3:
        time.sleep(0.05)  # the shadow runs of the local tier (the loop judges in the background)
    time.sleep(0.5)
    g.flush()
    judged = [r for r in _remote_calls(anthropic_up) if b"You are grading" in r]
    assert judged == [], judged[0][:300]
    assert openai_up.requests  # the local tier was shadow-run: there was something to judge


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_values_in_block_metadata_do_not_leave(remote):
    """Guards (no leak before either): `cache_control` with a value in it, a document's `context` and title, a search
    result's source and title, a web search result in the history, a tool named with a value."""
    g, up = remote
    card, ssn = SEEDS["CREDIT_CARD"], SEEDS["US_SSN"]
    ant(g).messages.create(model="fb", max_tokens=50, system=[
        {"type": "text", "text": f"user {EMAIL}", "cache_control": {"type": "ephemeral"}}], messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral", "ttl": "5m", "note": EMAIL}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"},
             "title": f"{EMAIL}.txt", "context": f"belongs to {ssn}", "citations": {"enabled": True}},
            {"type": "search_result", "source": f"https://x.example.org/{EMAIL}", "title": f"card {card}",
             "content": [{"type": "text", "text": f"ssn {ssn}"}]}]},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": EMAIL}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                {"type": "web_search_result", "url": f"https://x.example.org/{ssn}", "title": f"ssn {ssn}",
                 "encrypted_content": "abc", "page_age": None}]},
            {"type": "text", "text": "ok"}]},
        {"role": "user", "content": "go on"}],
        tools=[{"name": "crm", "description": f"for {EMAIL}", "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral"}}])
    for rec in up.requests:
        sent = json.dumps(json.loads(rec.raw))
        assert not [v for v in (EMAIL, ssn, card, "jane.doe") if v in sent], sent[:500]
