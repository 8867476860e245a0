"""Feedback over real HTTP (official SDK clients), linked to the request's route, task type, tier and model."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx
import pytest
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.learning.test_reflective_route import SUMMARY, judge_or_answer, reflective_config, wait_for


def post(g, body, key="test"):
    return httpx.post(g.url + "/v1/tierwise/feedback", json=body, headers={"authorization": f"Bearer {key}"})


def test_feedback_links_to_route_task_type_tier_and_model(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local"], "retries": 0}}))
    openai_up.default = Reply(text="local answer")
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    resp = post(g, {"request_id": rid, "thumbs": "down", "reason": "wrong city"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["route"] == "main" and body["tier"] == "local" and body["model"] == "local"
    assert body["rating"] == "poor"
    rec = g.ledger.get(rid)
    assert rec.extra["feedback"][0]["rating"] == "poor" and rec.extra["feedback"][0]["reason"] == "wrong city"


@pytest.mark.parametrize("body, field", [
    ({"request_id": "req_x"}, "rating"),
    ({"request_id": "req_x", "rating": "meh"}, "rating"),
    ({"request_id": "req_x", "thumbs": [1]}, "rating"),
    ({"request_id": "req_x", "thumbs": {"up": 1}}, "rating"),
    ({"request_id": "req_x", "thumbs": 1}, "rating"),
    ({"rating": "good"}, "request_id"),
    ({"request_id": "a b", "rating": "good"}, "request_id"),
    ({"request_id": "req_x", "rating": "good", "reason": "x" * 5000}, "reason"),
    ({"request_id": "req_x", "rating": "good", "extra": 1}, "unknown field"),
    ([1, 2], "JSON object"),
])
def test_bad_feedback_is_a_clear_400(gateway, openai_up, anthropic_up, body, field):  # noqa: F811
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    resp = post(g, body)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert field in err["message"] and err["type"] == "invalid_request_error"


def test_unknown_request_is_404(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    resp = post(g, {"request_id": "req_nope", "rating": "good"})
    assert resp.status_code == 404 and "req_nope" in resp.json()["error"]["message"]


def test_an_evaluation_id_is_404_naming_the_request_to_rate(gateway, openai_up, anthropic_up):  # noqa: F811
    # `tierwise requests` lists a reflective route's evaluations (`req_…-eval`) beside the requests. Before, rating one
    # said "no answer with request id 'req_…-eval' in the ledger", though the row was listed right there.
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    resp = post(g, {"request_id": "req_abc-eval", "rating": "poor"})
    assert resp.status_code == 404
    message = resp.json()["error"]["message"]
    assert "the judge's evaluation of request req_abc" in message and "rate req_abc itself" in message, message


def test_feedback_needs_the_gateway_key(gateway, openai_up, anthropic_up, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TW_KEYS", "sekrit-key-1")
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = ["TW_KEYS"]
    g = gateway(cfg)
    resp = post(g, {"request_id": "req_x", "rating": "good"}, key="wrong")
    assert resp.status_code == 401


def test_negative_feedback_on_a_local_answer_gets_it_judged(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(reflective_config(openai_up, anthropic_up))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    route = g.gateway.resolve("main")
    client = oai(g)
    for i in range(20):
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} ({i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier("summarisation") == "local":
            break
    assert route.loop.boundary.tier("summarisation") == "local"
    r = client.chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": f"{SUMMARY} (last)"}])
    assert r.parse().choices[0].message.content == "local summary"
    rid = r.headers["x-tierwise-request-id"]
    assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    before = len(g.ledger.query(kind="eval"))
    resp = post(g, {"request_id": rid, "rating": "poor", "reason": "missed the budget figure"})
    assert resp.status_code == 200 and resp.json()["judging"] is True
    assert resp.json()["task_type"] == "summarisation" and resp.json()["tier"] == "local"

    def judged():
        g.flush()
        return len(g.ledger.query(kind="eval")) == before + 1
    assert wait_for(judged)
    ev = g.ledger.query(kind="eval")[-1].extra["evaluation"]
    assert ev["of"] == rid and ev["schedule"] == "negative-feedback"
    assert route.loop.schedule.stats(route.loop.key("summarisation")).reprobe == 5  # next uses judged


def test_cli_feedback(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    import yaml

    from tierwise.cli import main

    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    res = CliRunner().invoke(main, ["feedback", "-c", str(tmp_path / "tierwise.yaml"), rid, "good", "--reason", "ok"])
    assert res.exit_code == 0, res.output
    assert "recorded good" in res.output and "route main" in res.output
    assert g.ledger.get(rid).extra["feedback"][0]["source"] == "cli"


def private_config(openai_up, anthropic_up):  # noqa: F811
    """A one-route gateway config whose privacy section protects customer ids (CUST-nnnnnn) and emails."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    cfg["privacy"] = {"classes": {"secrets": {}, "customer": {"detectors": ["CUSTOMER_ID", "EMAIL_ADDRESS"]}},
                      "user": {"patterns": {"CUSTOMER_ID": [r"CUST-\d{6}"]}}}
    return cfg


def answered_once(gateway, openai_up, cfg):  # noqa: F811
    """A gateway on `cfg` that answered one request from the local tier: (gateway, that request's id)."""
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    return g, rid


def test_cli_feedback_reason_is_cleaned_like_the_endpoints(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """`tierwise feedback --reason` builds the configured detector from the config it loads: protected values
    are replaced before the ledger keeps the reason, as the HTTP endpoint does."""
    import yaml

    from tierwise.cli import main

    cfg = private_config(openai_up, anthropic_up)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g, rid = answered_once(gateway, openai_up, cfg)
    res = CliRunner().invoke(main, ["feedback", "-c", str(tmp_path / "tierwise.yaml"), rid, "poor", "--reason",
                                    "wrong for CUST-123456, ask bob@example.com"])
    assert res.exit_code == 0, res.output
    reason = g.ledger.get(rid).extra["feedback"][0]["reason"]
    assert "CUST-123456" not in reason and "bob@example.com" not in reason, reason
    assert reason.startswith("wrong for <CUSTOMER_ID>")


def test_a_slow_ledger_does_not_stall_other_requests(gateway, openai_up, anthropic_up):  # noqa: F811
    # Feedback waits for the ledger's writer and reads SQLite; that must happen off the event loop,
    # or one feedback call behind a busy writer would hold up every request the gateway serves.
    import threading

    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local"], "retries": 0}}))
    release, entered = threading.Event(), threading.Event()
    real_flush = g.ledger.flush

    def held_flush(timeout: float = 30.0) -> bool:
        entered.set()
        release.wait(20)
        return real_flush(timeout)

    g.ledger.flush = held_flush
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", post(g, {"request_id": "req_nope", "rating": "good"})))
    t.start()
    try:
        assert entered.wait(10)
        health = httpx.get(g.url + "/health", timeout=10)  # answered while the feedback call is held
        assert health.status_code == 200 and not result
    finally:
        release.set()
        t.join(20)
    assert result["r"].status_code == 404


def test_a_feedback_reason_is_cleaned_like_the_rest_of_the_ledger(gateway, openai_up, anthropic_up):  # noqa: F811
    """With a privacy section every value of a protected class is replaced before the ledger keeps it
    (docs/privacy.md); a feedback reason is merged into the row later (`Ledger.annotate`) and was kept as sent."""
    g, rid = answered_once(gateway, openai_up, private_config(openai_up, anthropic_up))
    resp = post(g, {"request_id": rid, "rating": "poor", "reason": "wrong for CUST-123456, ask bob@example.com"})
    assert resp.status_code == 200, resp.text
    reason = g.ledger.get(rid).extra["feedback"][0]["reason"]
    assert "CUST-123456" not in reason and "bob@example.com" not in reason, reason
    assert "wrong for" in reason


def test_when_cleaning_itself_fails_a_feedback_reason_is_withheld_not_kept(gateway, openai_up, anthropic_up):  # noqa: F811
    """A detector that raises something other than its own failure breaks `seal_record`'s cleaning: every free
    text of the row is withheld then, `extra` included (it was merged as sent); its rating and owner stay."""
    g, rid = answered_once(gateway, openai_up, private_config(openai_up, anthropic_up))

    def broken(text):
        raise RuntimeError("detector bug")

    g.gateway.privacy.scan = broken
    resp = post(g, {"request_id": rid, "rating": "poor", "reason": "wrong for CUST-123456, ask bob@example.com"})
    assert resp.status_code == 200, resp.text
    rec = g.ledger.get(rid)
    entry = rec.extra["feedback"][0]
    assert entry["reason"] == "[withheld]" and entry["rating"] == "poor" and entry["source"] == "api", entry
    assert "CUST-123456" not in str(rec.extra) and "bob@example.com" not in str(rec.extra)
    # the next request's row: its text withheld too, its extra's own words kept
    r2 = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    g.flush()
    rec2 = g.ledger.get(r2.headers["x-tierwise-request-id"])
    assert rec2.status == 200 and all("reason" not in s for s in rec2.steps)


def test_ratings_sent_at_the_same_moment_all_land(gateway, openai_up, anthropic_up):  # noqa: F811
    """Each rating was read from the row and written back in two steps: ratings of one answer sent in parallel
    each got a 200, and all but one were lost (each also counted as the first, so each `poor` started a judge
    call). The ledger's flush is held until every rating has reached it, so they all read at once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    n = 4  # under the event loop's default thread pool (6 threads on 2 cores)
    together = threading.Barrier(n, timeout=10)
    real_flush = g.ledger.flush

    def flush_together(timeout: float = 30.0) -> bool:
        if threading.current_thread().name.startswith("asyncio"):  # the feedback calls' worker threads
            together.wait()
        return real_flush(timeout)

    g.ledger.flush = flush_together
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda i: post(g, {"request_id": rid, "rating": "poor", "reason": f"r{i}"}), range(n)))
    assert [a.status_code for a in answers] == [200] * n
    g.ledger.flush = real_flush
    reasons = sorted(f["reason"] for f in g.ledger.get(rid).extra["feedback"])
    assert reasons == [f"r{i}" for i in range(n)]


def test_cli_feedback_on_a_reflective_local_answer_says_the_route_does_not_see_it(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                                 tmp_path):
    """session 31 (newuser31): `tierwise feedback ID poor` wrote the ledger and said nothing more, while the docs said
    it "does the same" as the endpoint: the running reflective route neither counted the rating nor had its judge
    look at the answer. The command now says where a rating must go for the route to act on it."""
    import yaml

    from tierwise.cli import main

    cfg = reflective_config(openai_up, anthropic_up)
    cfg["privacy"] = {"classes": {"pii": {"detectors": ["EMAIL_ADDRESS"]}}, "policy": {"pii": "local_only"}}
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    r = oai(g).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": f"{SUMMARY} Reply to jane.doe@example.com"}])
    assert r.parse().choices[0].message.content == "local answer"  # local_only: the local tier served it
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    res = CliRunner().invoke(main, ["feedback", "-c", str(tmp_path / "tierwise.yaml"), rid, "poor"])
    assert res.exit_code == 0, res.output
    assert "recorded poor" in res.output and "tier local" in res.output
    assert "POST /v1/tierwise/feedback" in res.output and "only the ledger" in res.output


def test_learned_route_ratings_are_shown_and_said_to_route_nothing(
        gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    # Before (session 38, a first-time user): ratings given to a learned route's answers (POST and CLI) appeared nowhere
    # (`tierwise boundary` counted them for reflective routes only), and nothing said a learned route reads no rating.
    import yaml

    from tierwise.cli import main
    from tierwise.evaluation.loaders import load_jsonl
    from tierwise.routers import make_router, save_router

    fixture = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
    router = str(save_router(make_router("linear").fit(load_jsonl(fixture)), tmp_path / "router"))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router, "strong": "frontier", "weak": "local", "target_share": 0.5}})
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    res = CliRunner().invoke(main, ["feedback", "-c", str(tmp_path / "tierwise.yaml"), rid, "down"])
    assert res.exit_code == 0, res.output
    assert "is a learned route" in res.output and "does not route by ratings" in res.output
    out = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml")])
    assert out.exit_code == 0, out.output
    tier = "local" if g.ledger.get(rid).locality == "local" else "frontier"
    assert f"feedback on {tier} answers: poor 1 (kept, not routed by" in out.output, out.output
    js = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml"), "--json"])
    assert json.loads(js.output)["main"]["feedback"] == {tier: {"poor": 1}}
