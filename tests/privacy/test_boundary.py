"""The privacy boundary over real HTTP: redact and restore, local_only, block, regions, fail closed,
conversation mappings, audit in the ledger. `local` is the OpenAI double (locality local),
`frontier` the Anthropic double (remote); clients are the official SDKs."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles import Fail, Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import (
    SECRET,
    SEEDS,
    echo_placeholders,
    leaked,
    privacy_config,
)
from tierwise.config import parse_config
from tierwise.errors import ConfigError

FB = {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
      "solo": {"policy": "fallback", "targets": ["frontier"], "retries": 0}}
MSG = f"Mail {SEEDS['EMAIL_ADDRESS']} the card {SEEDS['CREDIT_CARD']} details."


def _row(g, rid):
    g.flush()
    rec = g.ledger.get(rid)
    assert rec is not None
    return rec


def test_redact_sends_placeholders_and_restores_the_answer(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB))
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": MSG}])
    answer = raw.parse().choices[0].message.content
    sent = anthropic_up.requests[-1].raw
    assert leaked(sent) == []
    assert b"<EMAIL_ADDRESS_1>" in sent and b"<CREDIT_CARD_1>" in sent
    assert SEEDS["EMAIL_ADDRESS"] in answer and SEEDS["CREDIT_CARD"] in answer
    assert "<" not in answer
    rec = _row(g, raw.headers["x-tierwise-request-id"])
    (c,) = rec.privacy
    assert c["action"] == "redacted" and c["to"] == "frontier"
    assert c["redacted"] == {"EMAIL_ADDRESS": 1, "CREDIT_CARD": 1} and c["classes"] == {"pii": 2}
    assert len(c["sha256"]) == 64 and c["leak_check"] == {"values": 2, "found": 0}
    import hashlib
    assert c["sha256"] == hashlib.sha256(sent).hexdigest()  # the hash of exactly what left


def test_stream_restore_anthropic_client(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB))
    with ant(g).messages.stream(model="main", max_tokens=100, messages=[{"role": "user", "content": MSG}]) as s:
        text = "".join(s.text_stream)
    assert SEEDS["EMAIL_ADDRESS"] in text and SEEDS["CREDIT_CARD"] in text and "<" not in text
    assert leaked(anthropic_up.requests[-1].raw) == []


def test_local_only_never_reaches_remote(gateway, openai_up, anthropic_up):
    openai_up.default = Reply(text="local answer")
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB, route_policy={"main": {"pii": "local_only"}}))
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert raw.parse().choices[0].message.content == "local answer"
    assert anthropic_up.requests == []
    assert "decision:privacy:fail" in raw.headers["x-tierwise-steps"]
    rec = _row(g, raw.headers["x-tierwise-request-id"])
    assert rec.privacy[0]["action"] == "refused" and "local_only" in rec.privacy[0]["why"]
    assert rec.decision == "local"


def test_local_only_fails_clearly_when_local_is_down(gateway, openai_up, anthropic_up):
    openai_up.default = Fail(500)
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB,
                               route_policy={"main": {"pii": "local_only"}, "solo": {"pii": "local_only"}}))
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert e.value.status_code >= 500
    assert anthropic_up.requests == []
    # a route whose only target is remote answers a final 400 naming the class, never the value (a 403 before
    # session 36: Claude Code shows it as "Failed to authenticate"; tests/privacy/test_refused_remote_only.py)
    with pytest.raises(anthropic.BadRequestError) as e2:
        ant(g).messages.create(model="solo", max_tokens=50, messages=[{"role": "user", "content": MSG}])
    assert e2.value.body["error"]["type"] == "invalid_request_error" and "'pii'" in e2.value.message
    assert SEEDS["EMAIL_ADDRESS"] not in e2.value.message
    assert anthropic_up.requests == []


def test_local_only_refusal_names_the_class(gateway, openai_up, anthropic_up):
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB, policy={"pii": "local_only", "secrets": "block"}))
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="solo", messages=[{"role": "user", "content": MSG}])
    assert "'pii'" in e.value.message and "local_only" in e.value.message
    assert SEEDS["EMAIL_ADDRESS"] not in e.value.message
    assert anthropic_up.requests == []


def test_clean_request_passes_untouched(gateway, openai_up, anthropic_up):
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB, policy={"pii": "local_only", "secrets": "block"}))
    r = ant(g).messages.create(model="main", max_tokens=50, messages=[{"role": "user", "content": "What is 2+2?"}])
    assert r.content[0].text == "ok"
    assert len(anthropic_up.requests) == 1


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_block_is_a_4xx_in_the_clients_schema_naming_the_class(gateway, openai_up, anthropic_up, sdk):
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB))
    content = f"deploy with key {SECRET} please"
    if sdk == "openai":
        with pytest.raises(openai.BadRequestError) as e:
            oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": content}])
        body = e.value.body
        assert body["type"] == "invalid_request_error"
    else:
        with pytest.raises(anthropic.BadRequestError) as e:
            ant(g).messages.create(model="main", max_tokens=50, messages=[{"role": "user", "content": content}])
        body = e.value.body
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    text = str(body)
    assert "'secrets'" in text and "blocked" in text and SECRET not in text and SECRET[:12] not in text
    assert anthropic_up.requests == [] and openai_up.requests == []


def test_regions(gateway, openai_up, anthropic_up):
    anthropic_up.default = Reply(text="from eu")
    routes = {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
    cfg = privacy_config(openai_up.url, anthropic_up.url, routes, policy={"pii": {"action": "allow", "regions": ["eu"]}})
    cfg["providers"]["cloud"]["regions"] = ["us"]
    g = gateway(cfg)
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert r.choices[0].message.content == "ok"  # the local double: the us provider was refused
    assert anthropic_up.requests == []
    g.stop()
    cfg["providers"]["cloud"]["regions"] = ["eu", "eu-west-1"]
    g2 = gateway(cfg)
    r = oai(g2).chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert r.choices[0].message.content == "from eu"
    # allowed in that region: sent as it is
    assert SEEDS["EMAIL_ADDRESS"].encode() in anthropic_up.requests[-1].raw


def test_detector_failure_fails_closed(gateway, openai_up, anthropic_up):
    openai_up.default = Reply(text="local")
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB, max_chars=10_000)
    g = gateway(cfg)
    big = "word " * 2_500  # over the detector's bound: the scan fails
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": big}])
    assert r.choices[0].message.content == "local"
    assert anthropic_up.requests == []
    with pytest.raises(openai.BadRequestError) as e:  # a 403 before session 36 (newuser36)
        oai(g).chat.completions.create(model="solo", messages=[{"role": "user", "content": big}])
    assert "detector failed" in e.value.message


def test_conversation_mapping_spans_requests(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB))
    c = oai(g)
    h = {"x-tierwise-conversation": "conv-42"}
    other = "Also copy ops@example.org please."
    c.chat.completions.create(model="main", messages=[{"role": "user", "content": other}], extra_headers=h)
    assert b"<EMAIL_ADDRESS_1>" in anthropic_up.requests[-1].raw
    # next turn: the first email keeps number 1, the new one is 2 -- the mapping came from the store
    r = c.chat.completions.create(model="main", messages=[{"role": "user", "content": other + " " + MSG}],
                                  extra_headers=h)
    sent = anthropic_up.requests[-1].raw
    assert b"<EMAIL_ADDRESS_1>" in sent and b"<EMAIL_ADDRESS_2>" in sent and leaked(sent) == []
    assert SEEDS["EMAIL_ADDRESS"] in r.choices[0].message.content
    # without the header: a fresh mapping per request
    c.chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert b"<EMAIL_ADDRESS_1>" in anthropic_up.requests[-1].raw


def test_conversation_mapping_follows_the_key_whichever_header_carries_it(gateway, openai_up, anthropic_up):
    # The mapping is bound to the client's key as authentication reads it (`x-api-key`, else the Bearer token).
    # Before: it was bound to the raw `Authorization` header first, so one key sent as `Authorization: Bearer K`
    # and as `x-api-key: K` had two mappings of one conversation (and a request carrying both was mapped by the
    # header authentication did not read).
    import httpx2 as httpx

    anthropic_up.default = echo_placeholders
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB))
    other = "Also copy ops@example.org please."
    for auth, text in (({"authorization": "Bearer client-key-7"}, other), ({"x-api-key": "client-key-7"}, MSG + " " + other)):
        r = httpx.post(g.url + "/v1/chat/completions", timeout=30, headers={"x-tierwise-conversation": "conv-7", **auth},
                       json={"model": "main", "messages": [{"role": "user", "content": text}]})
        assert r.status_code == 200, r.text
    sent = anthropic_up.requests[-1].raw
    # ops@ kept number 1 from the first turn; the new address is 2 (a fresh mapping would number them 1, 2 in order)
    assert sent.index(b"<EMAIL_ADDRESS_2>") < sent.index(b"<EMAIL_ADDRESS_1>") and leaked(sent) == []


def test_ledger_and_console_never_keep_protected_values(gateway, openai_up, anthropic_up, caplog):
    openai_up.default = Fail(400, msg=f"bad value {SEEDS['EMAIL_ADDRESS']}")
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"loc": {"policy": "fallback", "targets": ["local"],
                                                                    "retries": 0}})
    cfg["ledger"]["store_text"] = True
    cfg["server"]["default_route"] = "loc"
    g = gateway(cfg)
    with caplog.at_level("INFO"), pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="loc", messages=[{"role": "user", "content": MSG}])
    rid = e.value.response.headers["x-tierwise-request-id"]
    rec = _row(g, rid)
    import orjson
    stored = orjson.dumps(rec.to_dict()).decode()
    assert SEEDS["EMAIL_ADDRESS"] not in stored and "<EMAIL_ADDRESS>" in stored
    assert SEEDS["EMAIL_ADDRESS"] not in caplog.text


def test_unknown_route_or_class_in_privacy_config_is_a_clear_error(openai_up, anthropic_up, tmp_path):
    import yaml
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB, route_policy={"nope": {"pii": "redact"}})
    from tests.harness import GatewayServer, make_config
    with pytest.raises(ConfigError, match="privacy.routes.nope"):
        GatewayServer(make_config(cfg, tmp_path))
    bad = privacy_config(openai_up.url, anthropic_up.url, FB, policy={"phi2": "redact"})
    with pytest.raises(ConfigError, match=r"privacy.*phi2.*unknown data class"):
        parse_config(yaml.safe_dump(bad))
    bad = privacy_config(openai_up.url, anthropic_up.url, FB, policy={"pii": "send_anyway"})
    with pytest.raises(ConfigError, match=r"privacy\.policy\.pii"):
        parse_config(yaml.safe_dump(bad))


def test_context_exposes_the_private_flag(openai_up, anthropic_up, tmp_path):
    from tests.harness import make_config
    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.gateway import Gateway

    cfg = make_config(privacy_config(openai_up.url, anthropic_up.url, FB), tmp_path)
    gw = Gateway(cfg)
    ctx = gw.context("main", "req_flag", "openai", "main")
    assert ctx.privacy is not None and ctx.privacy.protected is False
    ctx.privacy.scan_request(Request(model="main", messages=[Message("user", [TextBlock("what is 2+2?")])]))
    assert ctx.privacy.protected is False
    ctx.privacy.scan_request(Request(model="main", messages=[Message("user", [TextBlock(MSG)])]))
    assert ctx.privacy.protected is True
    # without a privacy section: no guard, nothing to pay
    plain = make_config({k: v for k, v in privacy_config(openai_up.url, anthropic_up.url, FB).items()
                         if k != "privacy"}, tmp_path)
    gw2 = Gateway(plain)
    assert gw2.privacy is None and gw2.context("main", "req_2", "openai", "main").privacy is None
    assert all(d.privacy is None for d in gw2.deployments.values())
    assert gw.deployments["frontier"].privacy is gw.privacy and gw.deployments["local"].privacy is None


TOOL_HIDING = {"type": "function", "function": {
    "name": "send_mail", "description": "send a mail",
    "parameters": {"type": "object", "properties": {"to": {
        "type": "string", "enum": [SEEDS["EMAIL_ADDRESS"]], "default": SEEDS["EMAIL_ADDRESS"],
        "title": f"card {SEEDS['CREDIT_CARD']}"}}}}}


def test_values_in_tool_schemas_and_stop_sequences_are_redacted_too(gateway, openai_up, anthropic_up):
    # Before: the boundary read only the `description`s of a tool schema and never `stop`, so an
    # address in an `enum`/`default`/`title`, or in a stop sequence, reached the frontier as is.
    anthropic_up.default = Reply(text="ok")
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB))
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "mail the customer"}],
                                   tools=[TOOL_HIDING], stop=[f"from {SEEDS['EMAIL_ADDRESS']}"])
    sent = anthropic_up.requests[-1].raw
    assert leaked(sent) == []
    assert b"<EMAIL_ADDRESS_1>" in sent


def test_local_only_data_in_a_tool_schema_stays_local(gateway, openai_up, anthropic_up):
    openai_up.default = Reply(text="local answer")
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, FB, route_policy={"main": {"pii": "local_only"}}))
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "mail the customer"}],
                                       tools=[TOOL_HIDING])
    assert r.choices[0].message.content == "local answer" and anthropic_up.requests == []


def test_a_protected_request_is_not_cached_in_clear(gateway, openai_up, anthropic_up, tmp_path):
    """The answer cache kept the answer the client got — the privacy guard's restored values in it — in a sqlite
    file or a shared Redis in plain text, where the ledger keeps `<ENTITY>` markers: a card number and an email
    left for a store that may be on another machine. A request that holds a protected value is not cached."""
    anthropic_up.default = echo_placeholders
    db = tmp_path / "answers.db"
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB)
    cfg["cache"] = {"enabled": True, "backend": "sqlite", "sqlite_path": str(db), "routes": {"solo": {}}}
    g = gateway(cfg)
    seen = []
    for _ in range(2):
        raw = oai(g).chat.completions.with_raw_response.create(
            model="solo", temperature=0, messages=[{"role": "user", "content": MSG}])
        assert SEEDS["EMAIL_ADDRESS"] in raw.parse().choices[0].message.content
        seen.append(raw.headers["x-tierwise-cache"])
    plain = [oai(g).chat.completions.with_raw_response.create(
        model="solo", temperature=0, messages=[{"role": "user", "content": "What is the capital of France?"}]
    ).headers["x-tierwise-cache"] for _ in range(2)]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("answers.db*"))  # (after the plain one's hit: written)
    assert SEEDS["EMAIL_ADDRESS"].encode() not in stored and b"4111 1111" not in stored
    assert seen == ["bypass", "bypass"] and len(anthropic_up.requests) == 3  # answered by the upstream each time
    assert plain == ["miss", "hit"]  # a request without protected values is cached as before
