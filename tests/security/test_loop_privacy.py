"""The learning loop's judge and the privacy boundary (loopsec, session 31): a request the boundary keeps local (data
of a `local_only` class anywhere in it) is shown to a remote judge in no part. The judge reads the last user text
only, and the boundary scans only what it is sent: a value in the system prompt left that text free to go."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx

from tests.background_story import story, tell
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import wait_for
from tests.learning.test_reflective_route import SUMMARY
from tests.privacy.support import SEEDS, privacy_config

EMAIL = SEEDS["EMAIL_ADDRESS"]
PRIVATE = "Summarise the complaint of customer Q-PRIVATE-7781 in two sentences, please, for the team."


def _gateway(gateway, openai_up, anthropic_up, **route):  # noqa: F811
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"main": {
        "policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.6,
        "sampling": "rules", "schedule": {"first_uses": 1000}, **route}},  # every use judged
        policy={"pii": "local_only", "secrets": "block"})
    cfg["ledger"]["store_text"] = True
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = lambda rec: Reply(
        text="Fine.\nVERDICT: good" if "You are grading" in json.dumps(rec.body) else "frontier answer")
    return g, g.gateway.resolve("main"), oai(g)


def rate_poor_asking_no_one(g, route, r, up) -> None:
    """Rate the local answer of `r` (a raw SDK response) `poor` once the route's background work is done: accepted
    for the local tier, and no upstream call follows (no judge is asked)."""
    assert wait_for(lambda: not route._background, timeout=30)
    asked = len(up.requests)
    rated = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": r.headers["x-tierwise-request-id"],
                                                              "rating": "poor"})
    assert rated.status_code == 200 and rated.json()["tier"] == "local"
    assert wait_for(lambda: not route._background, timeout=30)
    assert len(up.requests) == asked


def _judge_saw(up, text: str) -> bool:
    return any(text in json.dumps(r.body) for r in up.requests if "You are grading" in json.dumps(r.body))


def test_a_local_only_value_in_the_system_prompt_keeps_the_request_from_the_judge(
        gateway, openai_up, anthropic_up, caplog):  # noqa: F811
    """Before: the type had moved local, the request (an e-mail address in its system prompt: `local_only`) was served
    locally and judged; the judge's call carried its last user text, in which the boundary found nothing: it left."""
    g, route, client = _gateway(gateway, openai_up, anthropic_up)
    tell(caplog)
    for i in range(30):
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} ({i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
    assert route.loop.boundary.tier("summarisation") == "local"
    asked = len(anthropic_up.requests)
    client.chat.completions.create(model="main", messages=[
        {"role": "system", "content": f"The customer's address is {EMAIL}."}, {"role": "user", "content": PRIVATE}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert not _judge_saw(anthropic_up, "Q-PRIVATE-7781")
    assert len(anthropic_up.requests) == asked  # no remote call at all
    # a request without protected data is still judged
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (plain)"}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert _judge_saw(anthropic_up, "(plain)"), story(g, route, caplog, anthropic_up)


def test_a_poor_rating_of_an_answer_the_boundary_kept_local_does_not_show_it_to_the_judge(
        gateway, openai_up, anthropic_up):  # noqa: F811
    """Before: the answer was served locally because its request was `local_only` (not judged), but a `poor` rating
    had the judge look at it from the ledger's text, cleaned of the address and not of the rest: the request's words
    reached the remote judge."""
    g, route, client = _gateway(gateway, openai_up, anthropic_up)
    r = client.chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": f"{PRIVATE} Reply to {EMAIL}."}])
    rate_poor_asking_no_one(g, route, r, anthropic_up)
    assert not _judge_saw(anthropic_up, "Q-PRIVATE-7781")


def _learned(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """A `learned` route whose two tiers are local and whose judge (online validation) is remote, under
    `pii: local_only`: (gateway, route, client)."""
    from tests.routers.test_online_validation import FIXTURE
    from tierwise.evaluation.loaders import load_jsonl
    from tierwise.routers import make_router, save_router

    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"main": {
        "policy": "learned", "router": router, "strong": "local", "weak": "local", "threshold": 2.0,
        "shadow_rate": 1.0, "validation": {"judge": "frontier", "window": 10, "min_pairs": 5}}},
        policy={"pii": "local_only", "secrets": "block"})
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="Fine.\nVERDICT: good")
    return g, g.gateway.resolve("main"), oai(g)


def test_a_learned_routes_remote_judge_is_not_shown_a_request_both_local_tiers_answered(
        gateway, openai_up, anthropic_up, tmp_path, caplog):  # noqa: F811
    """Online validation of a `learned` route whose two tiers are local and whose judge is remote: before, the
    judge's two calls carried the last user text of a request with a `local_only` value in its system prompt."""
    g, route, client = _learned(gateway, openai_up, anthropic_up, tmp_path)
    tell(caplog)
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "What is 2 + 2? (plain)"}])
    assert wait_for(lambda: not route._background, timeout=30)
    # judged: the request may leave
    assert _judge_saw(anthropic_up, "(plain)"), story(g, route, caplog, openai_up, anthropic_up)
    client.chat.completions.create(model="main", messages=[
        {"role": "system", "content": f"The customer's address is {EMAIL}."}, {"role": "user", "content": PRIVATE}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert not _judge_saw(anthropic_up, "Q-PRIVATE-7781")
    # and the route says so (before: nothing, the one branch of a shadow pair's judging without a line)
    assert [r for r in caplog.records if "not judged: the privacy policy keeps it local" in r.getMessage()], \
        story(g, route, caplog, openai_up, anthropic_up)


def test_a_judge_tag_drawn_as_digits_leaves_the_judge_its_call(
        gateway, openai_up, anthropic_up, tmp_path, caplog, monkeypatch):  # noqa: F811
    """The CI failure of the test above (session 33, flakes33): the judge's prompt fences the request and the answer
    with a tag drawn per call, 12 hex digits, all digits in ~1 call of 280. `924896726890` is a phone number to the
    boundary, so under `pii: local_only` the judge's call was refused and the pair left unjudged, with one INFO
    line. Now the tag is written in letters: the same draw is judged, both answers."""
    from tierwise.verifiers import judge

    monkeypatch.setattr(judge, "secrets", SimpleNamespace(token_hex=lambda n: "924896726890"))
    g, route, client = _learned(gateway, openai_up, anthropic_up, tmp_path)
    tell(caplog)
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "What is 2 + 2? (plain)"}])
    assert wait_for(lambda: not route._background, timeout=30)
    graded = [r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)]
    assert len(graded) == 2, story(g, route, caplog, openai_up, anthropic_up)  # before: none, PrivacyRefused
    g.flush()
    (pair,) = [r.shadow for r in g.ledger.query(kind="shadow", route="main")]
    assert pair["strong"]["outcome"] == pair["weak"]["outcome"] == 1.0
