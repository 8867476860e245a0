"""Online validation of a `learned` route over real HTTP (issue 22, parts 2 and 3): the judge grades both
answers of every shadow pair; the route's APGR on the recent judged pairs, with an interval, goes on each
trace, into the ledger, `tierwise eval ledger`, `tierwise boundary` and the dashboard's topology. When the
world stops matching the router (here: the judge starts failing the local tier on the easy questions
instead of the hard ones) the estimate falls to "not better than random", the route demotes itself to the
frontier tier with that reason, and is re-promoted when the evidence returns."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.learning.test_reflective_route import wait_for
from tests.routers.test_learned_route import decision_of
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
WINDOW, MIN_PAIRS = 24, 16
HARD = "Prove that the sum of {a} odd integers is even and explain each step in detail. (case {i})"
EASY = "What is the capital of France? (case {i})"


def world(local_fails_hard: bool):
    """The frontier double: answers, and grades as a judge would in a world where the local model fails the
    hard questions (the router's training) or the easy ones (a world the router does not know)."""
    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" not in text:
            return Reply(text="frontier answer")
        hard = "Prove that" in text
        local = "local answer" in text
        poor = local and (hard == local_fails_hard)
        return Reply(text=f"Checked.\nVERDICT: {'poor' if poor else 'good'}")
    return reply


def test_online_estimate_demotes_a_route_the_world_no_longer_matches_and_re_promotes_it(
        gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router, "strong": "frontier", "weak": "local", "target_share": 0.5,
        "shadow_rate": 1.0, "validation": {"window": WINDOW, "min_pairs": MIN_PAIRS, "rounds": 200}}},
        observability={"dashboard": {"enabled": True}})
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = world(local_fails_hard=True)
    client = oai(g)
    route = g.gateway.resolve("main")
    n = 0

    def ask():
        nonlocal n
        n += 1
        prompt = (HARD if n % 2 else EASY).format(a=("two", "three", "five")[n % 3], i=n)
        r = client.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": prompt}])
        assert wait_for(lambda: not route._background, timeout=30)  # the shadow run and its judging are done
        return decision_of(g, r.headers["x-tierwise-request-id"])

    # 1. The world the router was trained for: the estimate builds up, better than random; never demoted.
    first = [ask() for _ in range(WINDOW)]
    assert [s["detail"]["online"]["verdict"] for _, s in first][:MIN_PAIRS - 1] == ["too-few-pairs"] * (MIN_PAIRS - 1)
    last = first[-1][1]["detail"]
    assert last["online"]["verdict"] == "better-than-random" and last["online"]["low"] > 0.5
    assert not any(s["detail"].get("demoted") for _, s in first)
    assert {s["detail"]["tier"] for _, s in first} == {"strong", "weak"}

    # 2. The local model now fails the easy questions: demoted within one window of judged pairs.
    anthropic_up.default = world(local_fails_hard=False)
    second = [ask() for _ in range(WINDOW)]
    demoted = [bool(s["detail"].get("demoted")) for _, s in second]
    assert any(demoted), "never demoted"
    at = demoted.index(True)
    assert all(demoted[at:])
    for rec, step in second[at:]:
        assert step["detail"]["tier"] == "strong" and rec.decision == "frontier"
        assert "not better than random with confidence" in step["detail"]["demotion_reason"]
        assert rec.reason.startswith("demoted: online APGR")

    # the ledger keeps the judged pairs; `tierwise eval ledger` and `tierwise boundary` show the estimate
    g.flush()
    shadows = g.ledger.query(kind="shadow", route="main")
    assert len(shadows) == 2 * WINDOW
    assert all(s.shadow["strong"]["outcome"] is not None and s.shadow["weak"]["outcome"] is not None for s in shadows)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    from tierwise.cli import main

    for args in (["eval", "ledger"], ["eval", "--ledger"]):
        out = CliRunner().invoke(main, [*args, "-c", str(tmp_path / "tierwise.yaml"), "--ci", "0"])
        assert out.exit_code == 0, out.output
        assert "online validation" in out.output and "main: online APGR" in out.output
    out = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml"), "--json"])
    assert out.exit_code == 0, out.output
    online = json.loads(out.output)["main"]["online"]
    assert online["n"] == WINDOW and online["verdict"] == "not-better-than-random"
    import httpx2 as httpx

    topo = httpx.get(g.url + "/dashboard/api/topology", timeout=10).json()  # what the dashboard's routes table reads
    row = next(r for r in topo["routes"] if r["name"] == "main")
    assert row["online"]["verdict"] == "not-better-than-random" and "online APGR" in row["online"]["sentence"]

    # 3. The old world returns: while demoted the shadow runs keep judging the local tier, so it comes back.
    anthropic_up.default = world(local_fails_hard=True)
    third = [ask() for _ in range(WINDOW)]
    back = [bool(s["detail"].get("demoted")) for _, s in third]
    assert back[0] and not back[-1]
    up = back.index(False)
    rec, step = third[up]
    assert step["detail"].get("promoted") is True and rec.reason.startswith("re-promoted: online APGR")


def test_validation_needs_shadow_pairs_and_a_consistent_window(tmp_path, openai_up, anthropic_up):  # noqa: F811
    import pytest

    from tests.harness import make_config
    from tierwise.errors import ConfigError

    route = {"policy": "learned", "router": "r.json", "strong": "frontier", "weak": "local", "target_share": 0.5,
             "validation": {}}
    with pytest.raises(ConfigError, match="shadow_rate"):
        make_config(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": route}), tmp_path)
    route.update(shadow_rate=0.2, validation={"window": 20, "min_pairs": 30})
    with pytest.raises(ConfigError, match="min_pairs"):
        make_config(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": route}), tmp_path)


def test_a_pair_the_judge_does_not_grade_stays_unjudged(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router, "strong": "frontier", "weak": "local", "target_share": 0.5,
        "shadow_rate": 1.0, "validation": {"window": 10, "min_pairs": 5}}}))
    openai_up.default = Reply(text="local answer")
    # the strong answer gets a grade, the weak one a reply with none: neither outcome is recorded
    anthropic_up.default = lambda rec: Reply(text="VERDICT: good" if "frontier answer" in json.dumps(rec.body)
                                             and "You are grading" in json.dumps(rec.body) else
                                             "hmm" if "You are grading" in json.dumps(rec.body) else "frontier answer")
    route = g.gateway.resolve("main")
    shadows = four_shadowed(g, route)
    assert all(s.shadow["strong"]["outcome"] is None and s.shadow["weak"]["outcome"] is None for s in shadows)
    assert route.validator.latest.n == 0


def four_shadowed(g, route) -> list:
    """Four requests to route `main`, each shadowed and judged before the next: their shadow records."""
    for i in range(4):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": EASY.format(i=i)}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    shadows = g.ledger.query(kind="shadow", route="main")
    assert len(shadows) == 4
    return shadows
