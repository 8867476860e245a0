"""One gateway key cannot demote a `learned` route for every client through its online estimate.

The judged shadow pairs behind the estimate came from every key's requests: one key sending prompts the
router errs on (here: its questions are judged as in a world the router does not know) filled the window and
pulled the estimate below random, and every client's requests went to the frontier. Now each pair counts
under its key (at most `refit_key_share` of the window, never fewer than `min_pairs`), and a "not better than
random" verdict is taken again without the largest keys' pairs in turn; when the whole world changes (every
key's pairs), the route is still demoted. Real HTTP, the official OpenAI SDK, doubles upstream."""

from __future__ import annotations

import json

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.learning.test_reflective_route import wait_for
from tests.routers.test_learned_route import decision_of
from tests.routers.test_online_validation import EASY, FIXTURE, HARD, world
from tierwise.evaluation.loaders import load_jsonl
from tierwise.evaluation.online import JudgedPair, OnlineValidator, configured_estimates
from tierwise.routers import make_router, save_router

WINDOW, MIN_PAIRS, CAP = 40, 16, 20  # refit_key_share 0.5: one key holds at most 20 pairs
KEYS = {"TEAM_A": "key-of-team-a", "TEAM_B": "key-of-team-b"}
MARK = " (asked by team a)"


def judge(flipped: set[str]):
    """The frontier double: answers, and grades as a judge would. For the teams in `flipped` the local model
    fails the easy questions and the frontier the hard ones (a world where the router is always wrong);
    otherwise the local model fails the hard ones (the router's training)."""
    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" not in text:
            return Reply(text="frontier answer")
        team = "a" if MARK.strip(" ()") in text else "b"
        hard, local = "Prove that" in text, "local answer" in text
        poor = (not hard if local else hard) if team in flipped else local and hard
        return Reply(text=f"Checked.\nVERDICT: {'poor' if poor else 'good'}")
    return reply


def test_one_key_cannot_demote_a_learned_route_for_the_others(gateway, openai_up, anthropic_up,  # noqa: F811
                                                              tmp_path, monkeypatch):
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, server={"api_keys_env": list(KEYS)},
                                routes={"main": {
                                    "policy": "learned", "router": router, "strong": "frontier", "weak": "local",
                                    "target_share": 0.5, "shadow_rate": 1.0, "refit_key_share": 0.5,
                                    "validation": {"window": WINDOW, "min_pairs": MIN_PAIRS, "rounds": 200}}}))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = judge(flipped=set())
    route = g.gateway.resolve("main")
    n = 0

    def ask(env: str):
        nonlocal n
        n += 1
        prompt = (HARD if n % 2 else EASY).format(a=("two", "three", "five")[n % 3], i=n)
        prompt += MARK if env == "TEAM_A" else ""
        r = oai(g, api_key=KEYS[env]).chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": prompt}])
        assert wait_for(lambda: not route._background, timeout=30)  # the shadow run and its judging are done
        return decision_of(g, r.headers["x-tierwise-request-id"])[1]["detail"]

    # 1. Team B's traffic, in the world the router was trained for: better than random.
    first = [ask("TEAM_B") for _ in range(24)]
    assert first[-1]["online"]["verdict"] == "better-than-random"
    # 2. Team A floods with questions judged as in another world: before, its pairs filled the window and the
    # route was demoted for everyone (team B's requests sent to the frontier).
    anthropic_up.default = judge(flipped={"a"})
    flood = [ask("TEAM_A") for _ in range(WINDOW)]
    assert not any(d.get("demoted") for d in flood), [d["online"] for d in flood[-3:]]
    after = ask("TEAM_B")
    assert not after.get("demoted") and after["online"]["verdict"] == "better-than-random"
    held = [p.key for p in route.validator.pairs()]
    assert held.count("TEAM_A") == CAP == held.count("TEAM_B")  # each key at its cap replaced its own oldest
    assert "without the 20 pairs of one gateway key" in route.validator.latest.sentence()
    # `tierwise eval ledger` and `tierwise boundary` read the same figure back from the ledger (all keys' pairs
    # together, before session 22: "not better than random", the route the live estimate rightly kept)
    g.flush()
    from_ledger = configured_estimates(g.gateway.cfg, g.ledger, route="main")["main"]
    assert from_ledger.verdict == "better-than-random" and from_ledger.sentence() == route.validator.latest.sentence()
    # 3. The world changes for every key (the local model now fails the easy questions, passes the hard ones):
    # the route is demoted all the same.
    anthropic_up.default = world(local_fails_hard=False)
    late = [ask("TEAM_B") for _ in range(CAP)]
    assert late[-1].get("demoted"), [d["online"] for d in late[-4:]]
    assert "not better than random" in late[-1]["demotion_reason"]


def test_a_key_at_its_cap_replaces_its_own_oldest_pair_and_restore_keeps_the_caps():
    v = OnlineValidator(window=10, min_pairs=5, rounds=50, key_share=0.25)  # cap: max(5, 3) = 5
    for i in range(4):
        v.add(JudgedPair(i, 0.1 * i, 0.5, 1.0, 0.0, "b"))
    for i in range(20):
        v.add(JudgedPair(100 + i, 0.5, 0.5, 1.0, 0.0, "a"))
    kept = v.pairs()
    assert [p.key for p in kept].count("a") == 5 and [p.prompt_chars for p in kept if p.key == "b"] == [0, 1, 2, 3]
    assert [p.prompt_chars for p in kept if p.key == "a"] == [115, 116, 117, 118, 119]
    for i in range(6):  # pairs without a key are not capped: the window's oldest go
        v.add(JudgedPair(200 + i, 0.5, 0.5, 1.0, 0.0))
    assert [p.key for p in v.pairs()] == ["a"] * 4 + [""] * 6
    w = OnlineValidator(window=10, min_pairs=5, rounds=50, key_share=0.25)
    w.restore([JudgedPair(i, 0.5, 0.5, 1.0, 0.0, "a") for i in range(9)])
    assert [p.prompt_chars for p in w.pairs()] == [4, 5, 6, 7, 8]
