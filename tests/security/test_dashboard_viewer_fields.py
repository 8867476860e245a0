"""A viewer key's trace of a ledger record whose `extra` holds the conversation under names of the writer's own
choosing: `Ledger.annotate` is the library's way to label a record (docs: `extra.outcome`), and what an
application files there (a corrected answer, the tool call it ran) is the conversation whatever its key's case or
words. The viewer reads what happened, not what was said; numbers and flags stay readable."""

from __future__ import annotations

import httpx2 as httpx
import orjson

from tests.security.test_dashboard_roles import SECRET_Q, ask, bearer, roles  # noqa: F401 (a fixture)

WORDS = "ZEBRA-7731 the patient's biopsy came back clear"


def test_a_viewer_reads_no_conversation_under_other_names_in_extra(roles):  # noqa: F811
    g = roles
    rid = ask(g, "key-team-b", "b", SECRET_Q, "bob-session")
    for i in range(10):  # `rid` leaves the in-memory feed: its trace now comes from the ledger
        ask(g, "key-ops", "a", f"ops question {i}")
    g.flush()
    assert g.ledger.annotate(rid, Local_Answer=WORDS, answer_text=WORDS, systemPrompt=WORDS,
                             tool_call={"name": "lookup", "arguments": orjson.dumps({"q": WORDS}).decode()},
                             corrections=[{"Answer": WORDS}], model_output=[WORDS], outcome=0.75,
                             output_tokens_seen=412, answered_locally=True)

    def trace(key: str) -> str:
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
        assert got.status_code == 200, got.text
        return got.text

    assert trace("key-admin").count("ZEBRA-7731") == 6  # (the words are there to withhold)
    seen = trace("key-view")
    assert "ZEBRA-7731" not in seen and SECRET_Q not in seen, seen
    extra = orjson.loads(seen)["extra"]
    assert extra["outcome"] == 0.75 and extra["output_tokens_seen"] == 412 and extra["answered_locally"] is True
    assert extra["tool_call"]["name"] == "lookup"


def test_a_viewer_reads_no_approvers_reason_in_the_approval_decision(two_tier, monkeypatch, anthropic_up):
    """An approver decides having read the request's preview, and may say why in its words ("the 5000 EUR wire to
    account 42 is payroll"): the viewer's trace withheld that reason on the approval note but showed it in the
    approval decision's own reason, "approved by admin:TW_ADMIN (<reason>)" (review30a)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.approvals.conftest import ADMIN, GW_KEY, approvals_config, decide, wait_pending
    from tests.doubles import Reply
    from tests.gateway.conftest import oai

    monkeypatch.setenv("TW_ADMIN", ADMIN)
    monkeypatch.setenv("TW_GW", GW_KEY)
    monkeypatch.setenv("VIEW", "key-view")
    anthropic_up.default = Reply(text="done", usage=(10, 5))
    g = two_tier(server={"default_route": "main", "api_keys_env": ["TW_GW"], "admin_keys_env": ["TW_ADMIN"]},
                 approvals=approvals_config(),
                 observability={"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10}})
    why = "the ZEBRA-7731 wire of 5000 EUR to account 42 is payroll"
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: oai(g, api_key=GW_KEY).chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": "wire 5000 EUR to account 42"}]))
        [p] = wait_pending(g.url)
        assert decide(g.url, p["id"], "approve", why).status_code == 200
        rid = fut.result(timeout=10).headers["x-tierwise-request-id"]
    g.flush()

    def trace(key: str) -> str:
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
        assert got.status_code == 200, got.text
        return got.text

    assert "ZEBRA-7731" in trace(ADMIN)  # (the words are there to withhold)
    seen = trace("key-view")
    assert "ZEBRA-7731" not in seen, seen
    assert "approved by admin:TW_ADMIN" in seen  # who decided stays readable
