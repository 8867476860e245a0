"""Who reads what of the dashboard, /metrics and the budget status (server/roles.py), attacked over real
HTTP with the keys clients really hold: two team keys, an unscoped gateway key, a viewer key, an admin key.
Request ids are a process prefix and a counter, so every test also walks the neighbours of its own id.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai

TEAMS = {
    "a": {"policy": "fallback", "targets": ["frontier"], "retries": 0},
    "b": {"policy": "fallback", "targets": ["frontier"], "retries": 0},
}
SECRET_Q = "team b's confidential question"
KEYS = {"TEAM_A": "key-team-a", "TEAM_B": "key-team-b", "OPS": "key-ops", "VIEW": "key-view", "ADMIN": "key-admin"}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def make(two_tier: Any, monkeypatch: Any, **dashboard: Any) -> Any:
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    keys = [{"env": "TEAM_A", "name": "team-a", "routes": ["a"]}, {"env": "TEAM_B", "name": "team-b", "routes": ["b"]},
            "OPS"]
    return two_tier(routes=TEAMS, ledger={"store_text": True},
                    server={"api_keys_env": keys, "admin_keys_env": ["ADMIN"], "default_route": "a"},
                    budgets={"limits": [{"name": "per-key", "per": "key", "tokens": 100_000},
                                        {"name": "per-session", "per": "session", "tokens": 100_000}]},
                    observability={"metrics": {"enabled": True},
                                   "dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10,
                                                 **dashboard}})


def ask(g: Any, key: str, route: str, text: str, session: str = "s") -> str:
    r = oai(g, api_key=key).chat.completions.with_raw_response.create(
        model=route, messages=[{"role": "user", "content": text}], extra_headers={"x-tierwise-session": session})
    return r.headers["x-tierwise-request-id"]


def neighbours(rid: str, spread: int = 30) -> list[str]:
    """The ids a client can guess from its own: the same prefix, the counter around its own."""
    head, counter = rid[:-12], int(rid[-12:], 16)
    return [f"{head}{n:012x}" for n in range(max(1, counter - spread), counter + spread) if n != counter]


def sse_rows(g: Any, key: str, until: str) -> list[dict[str, Any]]:
    """The rows the live stream sends `key` until the row `until` arrives."""
    rows: list[dict[str, Any]] = []
    with httpx.stream("GET", g.url + "/dashboard/api/stream", headers=bearer(key), timeout=20) as r:
        assert r.status_code == 200
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if line.startswith(b"data: "):
                        rows.extend(orjson.loads(line[6:])["rows"])
            if any(row["id"] == until for row in rows):
                return rows
    raise AssertionError(f"{until} never came: {rows}")


@pytest.fixture
def roles(two_tier: Any, monkeypatch: Any, anthropic_up: Any) -> Any:
    anthropic_up.default = Reply(text="the answer", usage=(10, 5))
    return make(two_tier, monkeypatch)


def test_a_gateway_key_reads_only_its_own_requests_and_traces(roles):
    g = roles
    mine: dict[str, set[str]] = {"key-ops": set(), "key-team-a": set(), "key-team-b": set()}
    b_old = ask(g, "key-team-b", "b", SECRET_Q, "bob-session")  # will leave the in-memory feed (recent: 10)
    for i in range(10):
        mine["key-ops"].add(ask(g, "key-ops", "a", f"ops question {i}"))
    b_new = ask(g, "key-team-b", "b", SECRET_Q, "bob-session")
    a_own = ask(g, "key-team-a", "a", "team a's own question")
    ops_own = ask(g, "key-ops", "a", "ops question last")
    mine["key-ops"].add(ops_own)
    mine["key-team-a"].add(a_own)
    mine["key-team-b"].update((b_old, b_new))
    g.flush()

    # the unscoped gateway key: its own rows only, in the table and the live stream
    recent = httpx.get(g.url + "/dashboard/api/recent", headers=bearer("key-ops")).json()["rows"]
    assert ops_own in {r["id"] for r in recent}
    assert {r["id"] for r in recent}.isdisjoint({b_old, b_new, a_own})
    streamed = {r["id"] for r in sse_rows(g, "key-ops", until=ops_own)}
    assert ops_own in streamed and streamed.isdisjoint({b_new, a_own})
    # a team key: its own, not the other team's
    streamed = {r["id"] for r in sse_rows(g, "key-team-a", until=a_own)}
    assert streamed == {a_own}

    # trace click-through with guessed ids: another key's request reads as an unknown one,
    # whether it comes from memory or from the ledger
    for key, own in (("key-ops", ops_own), ("key-team-a", a_own)):
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": own}, headers=bearer(key))
        assert got.status_code == 200 and own in got.text
        for rid in neighbours(own):
            got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
            assert got.status_code == (200 if rid in mine[key] else 404), (key, rid, got.text[:200])
            assert SECRET_Q not in got.text
    for rid in (b_old, b_new):
        for key in ("key-ops", "key-team-a"):
            got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
            assert got.status_code == 404 and got.json()["error"]["message"] == "no such request", got.text
    # the owner reads its own traces, with its conversation where the ledger holds it (`store_text`)
    got = httpx.get(g.url + "/dashboard/api/trace", params={"id": b_old}, headers=bearer("key-team-b"))
    assert got.status_code == 200 and SECRET_Q in got.text
    got = httpx.get(g.url + "/dashboard/api/trace", params={"id": b_new}, headers=bearer("key-team-b"))
    assert got.status_code == 200 and b_new in got.text


def test_gateway_wide_views_need_an_admin_or_viewer_key(roles):
    g = roles
    b = ask(g, "key-team-b", "b", SECRET_Q, "bob-session")
    g.flush()
    wide = ("/dashboard/api/summary", "/dashboard/api/topology", "/metrics")
    for key in ("key-ops", "key-team-a", "key-team-b"):
        for path in wide:
            got = httpx.get(g.url + path, headers=bearer(key))
            assert got.status_code == 403, (key, path, got.text[:200])
            assert "admin key" in got.json()["error"]["message"]
    for key in ("key-admin", "key-view"):
        for path in wide:
            assert httpx.get(g.url + path, headers=bearer(key)).status_code == 200, (key, path)
        assert b in {r["id"] for r in httpx.get(g.url + "/dashboard/api/recent", headers=bearer(key)).json()["rows"]}
        assert b in {r["id"] for r in sse_rows(g, key, until=b)}
    # the admin reads the conversation; the viewer what happened, not what was said
    for _ in range(10):  # `b` leaves the in-memory feed: its trace comes from the ledger, with the text
        ask(g, "key-ops", "a", "ops question")
    g.flush()
    t = httpx.get(g.url + "/dashboard/api/trace", params={"id": b}, headers=bearer("key-admin"))
    assert t.status_code == 200 and SECRET_Q in t.text
    t = httpx.get(g.url + "/dashboard/api/trace", params={"id": b}, headers=bearer("key-view"))
    assert t.status_code == 200 and SECRET_Q not in t.text and "withheld" in t.text
    # no key, a made-up key: 401
    for headers in ({}, bearer("key-guess")):
        assert httpx.get(g.url + "/dashboard/api/recent", headers=headers).status_code == 401


def test_the_viewer_reads_everything_and_changes_nothing(roles):
    g = roles
    b = ask(g, "key-team-b", "b", SECRET_Q, "bob-session")
    g.flush()
    writes = (("POST", "/v1/chat/completions", {"model": "a", "messages": [{"role": "user", "content": "x"}]}),
              ("POST", "/v1/messages", {"model": "a", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
              ("POST", "/v1/tierwise/feedback", {"request_id": b, "rating": "poor"}),
              ("POST", "/v1/tierwise/cache/invalidate", {}),
              ("GET", "/v1/tierwise/approvals", None),
              ("POST", "/v1/tierwise/approvals", {"id": "x", "decision": "approve"}))
    for method, path, body in writes:
        got = httpx.request(method, g.url + path, headers=bearer("key-view"), json=body)
        assert got.status_code in (401, 403), (path, got.status_code, got.text[:200])
    assert "feedback" not in (g.gateway.ledger.get(b).extra or {})
    status = httpx.get(g.url + "/v1/tierwise/budgets", headers=bearer("key-view"))
    assert status.status_code == 200 and ("per-session", "team-b/bob-session") in {
        (r["budget"], r["value"]) for r in status.json()["budgets"]}


def test_budget_rows_are_a_keys_own(roles):
    g = roles
    ask(g, "key-team-b", "b", SECRET_Q, "bob-session")
    ask(g, "key-ops", "a", "ops question", "ops-session")
    g.flush()

    def seen(key: str) -> set[tuple[str, str]]:
        r = httpx.get(g.url + "/v1/tierwise/budgets", headers=bearer(key))
        assert r.status_code == 200, r.text
        return {(row["budget"], row["value"]) for row in r.json()["budgets"]}

    everything = {("per-key", "team-b"), ("per-key", "OPS"), ("per-session", "team-b/bob-session"),
                  ("per-session", "OPS/ops-session")}  # a session is the naming key's own (docs/budgets.md)
    assert seen("key-ops") == {("per-key", "OPS")}  # not team b's spend, no client's session ids
    assert seen("key-team-b") == {("per-key", "team-b")}
    assert seen("key-admin") == everything
    assert "reservations_in_flight" not in httpx.get(g.url + "/v1/tierwise/budgets", headers=bearer("key-ops")).json()


def test_client_keys_none_closes_the_dashboard_to_gateway_keys(two_tier, monkeypatch, anthropic_up):
    anthropic_up.default = Reply(text="the answer", usage=(10, 5))
    g = make(two_tier, monkeypatch, client_keys="none")
    own = ask(g, "key-ops", "a", "ops question")
    g.flush()
    for path in ("/dashboard/api/recent", f"/dashboard/api/trace?id={own}", "/dashboard/api/stream"):
        got = httpx.get(g.url + path, headers=bearer("key-ops"), timeout=5)
        assert got.status_code == 403 and "client_keys" in got.json()["error"]["message"], (path, got.text[:200])
    assert httpx.get(g.url + "/dashboard/api/recent", headers=bearer("key-admin")).status_code == 200
    # the setting closes the dashboard, not the key's own budget buckets
    own = httpx.get(g.url + "/v1/tierwise/budgets", headers=bearer("key-ops"))
    assert own.status_code == 200 and {r["value"] for r in own.json()["budgets"]} == {"OPS"}


def test_one_key_for_a_single_operator(two_tier, monkeypatch, anthropic_up):
    """The documented way for one person to use one key for everything: the same variable in both lists."""
    monkeypatch.setenv("ME", "my-key")
    monkeypatch.setenv("OTHER", "other-key")
    anthropic_up.default = Reply(text="the answer", usage=(10, 5))
    g = two_tier(routes=TEAMS, server={"api_keys_env": ["ME", "OTHER"], "admin_keys_env": ["ME"]},
                 observability={"metrics": {"enabled": True}, "dashboard": {"enabled": True}})
    other = ask(g, "other-key", "a", "someone else's question")
    mine = ask(g, "my-key", "a", "my question")
    g.flush()
    rows = {r["id"] for r in httpx.get(g.url + "/dashboard/api/recent", headers=bearer("my-key")).json()["rows"]}
    assert {other, mine} <= rows
    assert httpx.get(g.url + "/metrics", headers=bearer("my-key")).status_code == 200


def test_a_gateway_key_cannot_take_every_live_stream(roles):
    """Any client's key opens the live stream (for its own requests): one key holding every slot would
    shut the operator's dashboard out. A key gets a few; admin and viewer keys still get theirs."""
    import contextlib

    g = roles
    readers = []  # (kept: a dropped iterator closes its stream)
    with contextlib.ExitStack() as held:
        for _ in range(4):
            r = held.enter_context(httpx.stream("GET", g.url + "/dashboard/api/stream", headers=bearer("key-ops"),
                                                timeout=20))
            assert r.status_code == 200
            readers.append(r.iter_bytes())
            next(readers[-1])  # the stream is open
        got = httpx.get(g.url + "/dashboard/api/stream", headers=bearer("key-ops"), timeout=5)
        assert got.status_code == 429 and "per key" in got.json()["error"]["message"]
        with httpx.stream("GET", g.url + "/dashboard/api/stream", headers=bearer("key-view"), timeout=20) as r:
            assert r.status_code == 200
        with httpx.stream("GET", g.url + "/dashboard/api/stream", headers=bearer("key-team-a"), timeout=20) as r:
            assert r.status_code == 200  # another key has its own
    # the slots come back when the streams end
    with httpx.stream("GET", g.url + "/dashboard/api/stream", headers=bearer("key-ops"), timeout=20) as r:
        assert r.status_code == 200


def test_a_viewer_reads_no_answer_through_verifier_words(two_tier, monkeypatch, openai_up, anthropic_up):
    """A verifier's reason quotes the answer (a schema violation names the value, a judge explains its grade),
    and a cascade's decision repeats it; a client's feedback reason is its own text. The viewer reads the
    verdict (failed, score 0) and the decision (escalated), not those words: from memory and from the ledger."""
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    answer_value = "PATIENT-ZEBRA-4471 has type 2 diabetes"
    feedback_text = "wrong about PATIENT-ZEBRA-4471's dosage"
    openai_up.script(Reply(text=orjson.dumps({"n": answer_value}).decode()))
    anthropic_up.default = Reply(text="the answer", usage=(10, 5))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    g = two_tier(routes={"c": {"policy": "cascade", "tiers": ["local", "frontier"],
                               "verifiers": [{"type": "json_schema", "schema": schema}]}},
                 server={"api_keys_env": ["OPS"], "admin_keys_env": ["ADMIN"], "default_route": "c"},
                 observability={"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10}})
    rid = ask(g, "key-ops", "c", "a question")
    g.flush()

    def trace(key: str) -> str:
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
        assert got.status_code == 200, got.text
        return got.text

    assert answer_value in trace("key-admin")  # (the words are there to withhold)
    seen = trace("key-view")
    assert answer_value not in seen, seen
    steps = orjson.loads(seen)["steps"]
    verdict = next(s for s in steps if s["kind"] == "verdict")
    assert verdict["ok"] is False and verdict["score"] == 0.0 and verdict["reason"] == "[withheld from viewer keys]"
    assert any("escalating to frontier" in (s.get("reason") or "") for s in steps if s["kind"] == "decision")

    fb = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": rid, "rating": "poor", "reason": feedback_text},
                    headers=bearer("key-ops"))
    assert fb.status_code == 200, fb.text
    for i in range(10):  # the request leaves the in-memory feed: its trace now comes from the ledger
        anthropic_up.script(Reply(text="{}"))
        openai_up.script(Reply(text="{}"))
        ask(g, "key-ops", "c", f"question {i}")
    g.flush()
    assert feedback_text in trace("key-admin") and answer_value in trace("key-admin")
    seen = trace("key-view")
    assert answer_value not in seen and feedback_text not in seen, seen
    assert '"rating":"poor"' in seen


def test_a_viewer_reads_no_prompt_through_an_upstreams_error_text(two_tier, monkeypatch, openai_up, anthropic_up):
    """An upstream's error text is its own to write, and servers quote the request in it (a FastAPI-based server's
    validation error echoes the `input` it refused): a failed call's reason, the fallback's decision and the
    ledger's error message repeated it to viewer keys. The viewer reads the provider and the HTTP status, not the
    upstream's words: from memory and from the ledger (session 21)."""
    import openai

    from tests.doubles import Fail

    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    prompt = "PATIENT-ZEBRA-4471 has type 2 diabetes: what dose?"
    echo = f"[{{'type': 'extra_forbidden', 'loc': ('body', 'messages', 0), 'input': {{'content': '{prompt}'}}}}]"
    g = two_tier(server={"api_keys_env": ["OPS"], "admin_keys_env": ["ADMIN"], "default_route": "main"},
                 observability={"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10}})
    anthropic_up.script(Fail(503, echo))  # the frontier refuses, quoting the prompt; the fallback moves on
    openai_up.script(Fail(422, echo))  # and so does the local server: the request fails
    with pytest.raises(openai.APIStatusError):
        oai(g, api_key="key-ops").chat.completions.create(model="main", messages=[{"role": "user", "content": prompt}])
    g.flush()
    rid = g.ledger.recent(limit=1)[0].request_id

    def trace(key: str) -> str:
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
        assert got.status_code == 200, got.text
        return got.text

    assert prompt in trace("key-admin")  # (the words are there to withhold)
    seen = trace("key-view")
    assert prompt not in seen, seen
    calls = [s for s in orjson.loads(seen)["steps"] if s["kind"] == "call"]
    assert [c["reason"] for c in calls] == ["provider 'cloud' answered HTTP 503: [withheld from viewer keys]",
                                            "provider 'localsrv' answered HTTP 422: [withheld from viewer keys]"]
    for i in range(10):  # the request leaves the in-memory feed: its trace now comes from the ledger
        anthropic_up.script(Reply(text="fine"))
        ask(g, "key-ops", "main", f"question {i}")
    g.flush()
    assert prompt in trace("key-admin")
    seen = trace("key-view")
    assert prompt not in seen and "answered HTTP 422" in seen, seen


def test_a_viewer_reads_no_answer_through_an_evaluation_record(gateway, openai_up, anthropic_up, monkeypatch):
    """With `ledger.store_text`, the learning loop's `eval` records keep both tiers' answers (`local_answer`,
    `frontier_answer`, the flywheel's material) and the judged prompt. Their ids are the process prefix and a
    counter like every request's: a viewer who walks the neighbours of an id reads those records' traces, which
    must hold the verdict, not the conversation (session 30: both answers were shown to viewer keys)."""
    from tests.harness import wait_for
    from tests.learning.test_reflective_route import SUMMARY, reflective_config

    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    local_text, frontier_text = "LOCAL-ZEBRA-4471 summary", "FRONTIER-ZEBRA-4471 summary"
    cfg = reflective_config(openai_up, anthropic_up)
    cfg["server"].update(api_keys_env=["OPS"], admin_keys_env=["ADMIN"])
    cfg["observability"] = {"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10}}
    g = gateway(cfg)
    openai_up.default = Reply(text=local_text)
    anthropic_up.default = lambda rec: Reply(text="Covers it.\nVERDICT: good" if "You are grading" in
                                             orjson.dumps(rec.body).decode() else frontier_text)
    rid = ask(g, "key-ops", "main", SUMMARY)
    route = g.gateway.resolve("main")
    assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    evals = g.ledger.query(kind="eval")
    assert evals and evals[0].extra["evaluation"]["of"] == rid

    def trace(key: str, of: str) -> str:
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": of}, headers=bearer(key))
        assert got.status_code == 200, got.text
        return got.text

    for of in (evals[0].request_id, rid):
        seen = trace("key-view", of)
        for words in (local_text, frontier_text, "council met on Tuesday"):
            assert words not in seen, (of, seen)
        assert orjson.loads(seen)["route"] == "main"
    assert local_text in trace("key-admin", evals[0].request_id)  # (the words are there to withhold)
    ev = orjson.loads(trace("key-view", evals[0].request_id))
    assert ev["extra"]["evaluation"]["grade"] == "good"  # the verdict itself stays readable


def test_a_viewer_reads_no_prompt_through_the_privacy_audit_payload(gateway, openai_up, anthropic_up, monkeypatch):
    """`privacy.audit.store_payload` keeps each remote call's outgoing body (redacted: PII as placeholders, the rest
    of the conversation as sent) on the privacy decision and in the ledger's `privacy` column, for `tierwise audit
    --prove`. A viewer's trace, from memory and from the ledger, showed it whole (session 30)."""
    from tests.privacy.support import SEEDS, privacy_config

    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    words = "the council met on Tuesday about the hospital budget"
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"main": {"policy": "fallback", "targets": ["frontier"],
                                                                    "retries": 0}}, audit={"store_payload": True})
    cfg["server"].update(default_route="main", api_keys_env=["OPS"], admin_keys_env=["ADMIN"])
    cfg["observability"] = {"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10}}
    g = gateway(cfg)
    anthropic_up.default = Reply(text="noted")
    rid = ask(g, "key-ops", "main", f"Mail {SEEDS['EMAIL_ADDRESS']}: {words}.")
    g.flush()

    def trace(key: str) -> str:
        got = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers=bearer(key))
        assert got.status_code == 200, got.text
        return got.text

    for where in ("memory", "ledger"):
        assert words in trace("key-admin"), where  # (the words are there to withhold)
        seen = trace("key-view")
        assert words not in seen, (where, seen)
        assert "sha256" in seen  # the crossing itself stays readable
        for i in range(10):  # the request leaves the in-memory feed: its trace now comes from the ledger
            ask(g, "key-ops", "main", f"question {i}")
        g.flush()
