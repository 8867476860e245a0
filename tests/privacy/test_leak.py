"""The leak test (issue 17): multi-turn conversations with tool calls, seeded with structured
identifiers (card, IBAN, SSN, email, phone, IP), through every policy type -- rules, fallback,
cascade with `with_draft` escalation, cascade with an LLM judge, draft-and-verify, advisor,
specialist with a locally made summary, learned router with shadow sampling, ensemble -- to a
RECORDING remote double over real HTTP, with both official SDKs, streamed and not.

- `redact` routes: no seeded value, in any form, in any request body the remote double got;
  the client gets the original values back wherever the remote model echoed a placeholder
  (one of them written `< X_1 >`, which the double streams as separate chunks).
- `local_only` routes: the remote double gets no request at all, also when the local tier
  fails -- then the request fails, with an error in the client's API schema.

Every upstream call goes through Deployment, so these fail when the boundary seam is disabled
(`Deployment.privacy` never set): see the module's last test.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from tests.doubles import Fail, Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.privacy.pdfs import make_pdf
from tests.privacy.support import (
    ANTHROPIC_TOOLS,
    LOCAL_DRAFT,
    OPENAI_TOOLS,
    PLACEHOLDER,
    SEEDS,
    SYSTEM,
    anthropic_messages,
    leaked,
    openai_messages,
    privacy_config,
    remote_brain,
)
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"

# Routes whose answer comes from the remote model (so its echoed placeholders must be restored).
REMOTE_ANSWERS = {"fb", "rules", "casc", "judged", "dv", "spec", "ens"}
ALL = ["fb", "rules", "casc", "judged", "dv", "adv", "spec", "learned", "ens"]


def routes(router: str) -> dict[str, Any]:
    return {
        "fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
        "rules": {"policy": "rules", "rules": [{"match": {"tools": True}, "target": "frontier"}], "default": "local"},
        "casc": {"policy": "cascade", "tiers": ["local", "frontier"], "escalation_context": "with_draft",
                 "verifiers": [{"type": "arithmetic", "min_equations": 1}]},
        "judged": {"policy": "cascade", "tiers": ["local", "frontier"], "escalation_context": "with_draft",
                   "verifiers": [{"type": "llm_judge", "model": "frontier"}]},
        "dv": {"policy": "draft_verify", "draft": "local", "verifier": "frontier", "on_reject": "frontier"},
        "adv": {"policy": "advisor", "executor": "local", "advisor": "frontier", "max_uses": 1},
        "spec": {"policy": "specialist", "default": "local", "summariser": "local", "specialists": [
            {"name": "billing", "target": "frontier", "detect": {"keywords": ["confirm"]}, "context": "summary"}]},
        "learned": {"policy": "learned", "router": router, "strong": "frontier", "weak": "local",
                    "threshold": 1e9, "shadow_rate": 1.0},
        "ens": {"policy": "ensemble", "ensemble": "leak"},
    }


ENSEMBLE = {"name": "leak", "agents": [
    {"name": "extract", "model": "local", "prompt": "List the account facts in: {input}"},
    {"name": "answer", "model": "frontier", "depends_on": ["extract"], "prompt": "Write the reply from: {input}"},
]}


def local_brain(rec: Any) -> Reply:
    """The local model: asks the advisor once (its question quotes a card and an email), then
    answers with a draft that repeats raw values (it may see everything)."""
    body = rec.body or {}
    tools = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    if "advisor" in tools and "Confirmed:" not in rec.raw.decode("utf-8", "replace"):
        return Reply(tool_calls=[ToolCall("advisor", {
            "question": f"Is card {SEEDS['CREDIT_CARD']} of {SEEDS['EMAIL_ADDRESS']} still valid?"})])
    return Reply(text=LOCAL_DRAFT)


@pytest.fixture
def setup(gateway, openai_up, anthropic_up, tmp_path):
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    ens_dir = tmp_path / ".tierwise" / "ensembles"
    ens_dir.mkdir(parents=True)
    (ens_dir / "leak.yaml").write_text(yaml.safe_dump(ENSEMBLE, sort_keys=False))
    openai_up.default = local_brain
    anthropic_up.default = remote_brain

    def make(action: str) -> Any:
        rp = {r: {"pii": action} for r in ALL}
        cfg = privacy_config(openai_up.url, anthropic_up.url, routes(router), route_policy=rp)
        cfg["server"]["default_route"] = "fb"
        return gateway(cfg)

    return make


def ask(g: Any, sdk: str, route: str, stream: bool) -> str:
    if sdk == "openai":
        c = oai(g)
        if stream:
            chunks = c.chat.completions.create(model=route, messages=openai_messages(), tools=OPENAI_TOOLS, stream=True)
            return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        r = c.chat.completions.create(model=route, messages=openai_messages(), tools=OPENAI_TOOLS)
        return r.choices[0].message.content or ""
    c2 = ant(g)
    kw = {"model": route, "max_tokens": 300, "system": SYSTEM, "messages": anthropic_messages(), "tools": ANTHROPIC_TOOLS}
    if stream:
        with c2.messages.stream(**kw) as s:
            return "".join(s.text_stream)
    r2 = c2.messages.create(**kw)
    return "".join(b.text for b in r2.content if b.type == "text")


def _settle(g: Any, route: str, remote: Any) -> None:
    """Shadow runs happen after the answer: wait for them before judging what left."""
    if route == "learned":
        remote.wait_until(lambda: len(remote.requests) >= 1 and remote.active == 0, timeout=5)
        time.sleep(0.05)
    g.flush()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("route", ALL)
def test_redact_route_leaks_nothing_and_restores(setup, openai_up, anthropic_up, route, sdk, stream):
    g = setup("redact")
    answer = ask(g, sdk, route, stream)
    _settle(g, route, anthropic_up)
    assert anthropic_up.requests, "the remote model was never called: nothing tested"
    for r in anthropic_up.requests:
        assert leaked(r.raw) == [], f"{route}: seeded values reached the remote model"
        assert PLACEHOLDER.search(r.raw.decode()), "the remote model got no placeholder"
    if route in REMOTE_ANSWERS:
        echoed = set(PLACEHOLDER.findall(anthropic_up.requests[-1].raw.decode()))
        assert echoed
        for name in echoed:
            entity = name.rsplit("_", 1)[0]
            assert SEEDS[entity] in answer, f"{route}: {name} was not restored for the client"
        assert not PLACEHOLDER.search(answer) and "< " not in answer
    if route == "adv":
        # the advice (placeholders) reached the local executor restored: it may see the values
        advice = openai_up.requests[-1].raw.decode()
        assert "Confirmed:" in advice and SEEDS["CREDIT_CARD"] in advice
        assert not PLACEHOLDER.search(advice.split("Confirmed:", 1)[1])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("route", ALL)
def test_local_only_route_never_reaches_remote(setup, openai_up, anthropic_up, route, sdk, stream):
    g = setup("local_only")
    try:
        ask(g, sdk, route, stream)
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        # no local target could serve this policy alone: it fails, clearly, in the client's schema
        assert e.status_code in (400, 502, 503), e  # a privacy refusal: 400 since session 36 (403 before)
        assert "internal error" not in e.message
        assert not any(v in e.message for v in SEEDS.values())
    _settle(g, route, anthropic_up)
    time.sleep(0.05 if route == "learned" else 0)
    assert anthropic_up.requests == [], f"{route}: a local_only request reached the remote model"


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("route", ["fb", "casc", "judged", "dv", "learned", "spec"])
def test_local_only_fails_instead_when_local_is_down(setup, openai_up, anthropic_up, route, sdk):
    g = setup("local_only")
    openai_up.default = Fail(500)
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as e:
        ask(g, sdk, route, False)
    assert e.value.status_code in (400, 502, 503)  # a privacy refusal: 400 since session 36 (403 before)
    if route == "fb":  # the client learns why the remote target was not tried, not only the local error
        assert "privacy" in str(e.value).lower() or "local_only" in str(e.value), str(e.value)
    _settle(g, route, anthropic_up)
    assert anthropic_up.requests == []


def test_redact_across_both_remote_wire_formats(gateway, openai_up, anthropic_up):
    """The remote model on the OpenAI wire (the local on the Anthropic one): the same guarantees."""
    from tests.harness import two_tier_config

    openai_up.default = remote_brain
    anthropic_up.default = Reply(text=LOCAL_DRAFT)
    cfg = two_tier_config(anthropic_up.url, openai_up.url, local_kind="anthropic", remote_kind="openai",
                          routes={"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}})
    cfg["server"]["default_route"] = "fb"
    cfg["privacy"] = {"ner": {"enabled": False}, "policy": {"pii": "redact"}}
    g = gateway(cfg)
    for stream in (False, True):
        answer = ask(g, "anthropic", "fb", stream)
        sent = openai_up.requests[-1].raw
        assert leaked(sent) == []
        for name in set(PLACEHOLDER.findall(sent.decode())):
            assert SEEDS[name.rsplit("_", 1)[0]] in answer
    # tool-call arguments: the remote model calls a tool with placeholders; the client gets values
    openai_up.script(Reply(tool_calls=[ToolCall("lookup_account", {"email": "<EMAIL_ADDRESS_1>",
                                                                    "ssn": "US_SSN_1"})]))
    r = oai(g).chat.completions.create(model="fb", messages=openai_messages(), tools=OPENAI_TOOLS)
    args = json.loads(r.choices[0].message.tool_calls[0].function.arguments)
    assert args == {"email": SEEDS["EMAIL_ADDRESS"], "ssn": SEEDS["US_SSN"]}
    openai_up.script(Reply(tool_calls=[ToolCall("lookup_account", {"email": "<EMAIL_ADDRESS_1>"})]))
    chunks = list(oai(g).chat.completions.create(model="fb", messages=openai_messages(), tools=OPENAI_TOOLS,
                                                 stream=True))
    streamed = "".join(tc.function.arguments or "" for ch in chunks if ch.choices
                       for tc in (ch.choices[0].delta.tool_calls or []))
    assert json.loads(streamed) == {"email": SEEDS["EMAIL_ADDRESS"]}


def test_seam_disabled_leaks(setup, openai_up, anthropic_up, monkeypatch):
    """Evidence the test can fail: with the boundary detached from the deployments, values leave."""
    from tierwise.privacy.boundary import Boundary

    monkeypatch.setattr(Boundary, "attach", lambda self, deployments: None)
    g = setup("redact")
    ask(g, "openai", "casc", False)
    assert leaked(anthropic_up.requests[-1].raw) != []
    anthropic_up.requests.clear()
    g2 = setup("local_only")
    ask(g2, "anthropic", "fb", False)
    assert anthropic_up.requests != []


def _files_and_images(sdk: str) -> list[dict[str, Any]]:
    """A user turn whose values hide only in an image's URL (its file name), a document's title
    and context, and an uploaded file's name: no value in any text block."""
    email, card, iban = SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"].replace(" ", ""), SEEDS["IBAN_CODE"]
    if sdk == "openai":
        return [{"role": "user", "content": [
            {"type": "text", "text": "Please summarise the attachments."},
            {"type": "image_url", "image_url": {"url": f"https://files.example.com/scans/{email}/card-{card}.png"}},
            {"type": "file", "file": {"filename": f"statement {iban} {email}.pdf",
                                      # a real PDF (round 13 reads it; `%PDF-1.4` alone fails closed as unreadable)
                                      "file_data": "data:application/pdf;base64," + base64.b64encode(
                                          make_pdf(["Balance: 12 EUR."])).decode()}},
        ]}]
    return [{"role": "user", "content": [
        {"type": "text", "text": "Please summarise the attachments."},
        {"type": "image", "source": {"type": "url", "url": f"https://files.example.com/scans/{email}/card-{card}.png"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Balance: 12 EUR."},
         "title": f"statement {iban}", "context": f"uploaded by {email}"},
    ]}]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_image_urls_file_names_and_document_titles_do_not_leak(setup, openai_up, anthropic_up, sdk):
    g = setup("redact")
    messages = _files_and_images(sdk)
    try:
        if sdk == "openai":
            oai(g).chat.completions.create(model="fb", messages=messages)
        else:
            ant(g).messages.create(model="fb", max_tokens=100, messages=messages)
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        # what cannot be redacted in place (an image's URL) is refused, clearly, never sent (400: the
        # local fallback target is not sent image URLs either, providers/image_urls.py)
        assert e.status_code in (400, 403, 422, 502, 503), e
        assert not any(v in e.message for v in SEEDS.values())
    g.flush()
    for r in anthropic_up.requests:
        assert leaked(r.raw) == [], "a value hidden in an attachment's name or URL reached the remote model"
    # the audit says why the leak check refused (`tierwise audit --prove` printed "nothing sent ()")
    refused = [c for row in g.ledger.query() for c in (row.privacy or []) if c.get("action") == "refused"]
    assert refused and all("outgoing body" in c.get("why", "") for c in refused), refused
