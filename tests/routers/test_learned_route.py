"""A gateway routes through a trained `learned` route over real HTTP, records score and threshold
in the trace, and stores shadow pairs in the ledger off the response path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
HARD = "Prove that the sum of two odd integers is even and explain each step in detail. (variant 9)"
EASY = "What is the capital of France? (variant 9)"


@pytest.fixture
def router_path(tmp_path):
    return str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))


def learned_config(openai_up, anthropic_up, router_path, **route):  # noqa: F811
    return two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router_path, "strong": "frontier", "weak": "local",
        "target_share": 0.5, **route}})


def decision_of(g, rid):
    """The ledger row is written after the response is sent, so wait for it briefly."""
    for _ in range(200):
        g.flush()
        rec = g.ledger.get(rid)
        if rec is not None:
            return rec, next(s for s in rec.steps if s["kind"] == "decision")
        time.sleep(0.02)
    raise AssertionError(f"no ledger row for {rid}")


def test_learned_route_picks_tier_and_traces_score(gateway, openai_up, anthropic_up, router_path):  # noqa: F811
    g = gateway(learned_config(openai_up, anthropic_up, router_path))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    hard = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": HARD}])
    easy = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": EASY}])
    assert hard.parse().choices[0].message.content == "frontier answer"
    assert easy.parse().choices[0].message.content == "local answer"
    rec, step = decision_of(g, hard.headers["x-tierwise-request-id"])
    assert rec.decision == "frontier" and step["detail"]["tier"] == "strong"
    assert step["score"] >= step["detail"]["threshold"]
    rec, step = decision_of(g, easy.headers["x-tierwise-request-id"])
    assert rec.decision == "local" and step["score"] < step["detail"]["threshold"]


def test_fixed_threshold_and_shadow_pairs(gateway, openai_up, anthropic_up, router_path):  # noqa: F811
    g = gateway(learned_config(openai_up, anthropic_up, router_path, target_share=None, threshold=-100.0,
                               shadow_rate=1.0))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": EASY}])
    assert r.parse().choices[0].message.content == "frontier answer"  # threshold -100: everything is strong
    rid = r.headers["x-tierwise-request-id"]
    assert openai_up.wait_until(lambda: len(openai_up.requests) >= 1)
    for _ in range(100):
        g.flush()
        shadows = g.ledger.query(kind="shadow")
        if shadows:
            break
        time.sleep(0.05)
    assert len(shadows) == 1
    pair = shadows[0].shadow
    assert pair["of"] == rid and pair["routed"] == "strong" and pair["prompt"] == EASY
    assert pair["strong"]["answer"] == "frontier answer" and pair["weak"]["answer"] == "local answer"


def test_bad_learned_config_is_a_clear_error(tmp_path, openai_up, anthropic_up, router_path):  # noqa: F811
    from tests.harness import make_config
    from tierwise.errors import ConfigError
    from tierwise.server.build import build_gateway

    with pytest.raises(ConfigError, match="exactly one"):
        make_config(learned_config(openai_up, anthropic_up, router_path, threshold=0.1), tmp_path)
    cfg = make_config(learned_config(openai_up, anthropic_up, str(tmp_path / "nope.json")), tmp_path)
    with pytest.raises(ConfigError, match="router file not found"):
        build_gateway(cfg)


@pytest.mark.parametrize("tier", ["weak", "strong"])
def test_a_router_that_fails_to_score_still_gets_the_request_answered(
        gateway, openai_up, anthropic_up, router_path, monkeypatch, tier):  # noqa: F811
    from tierwise.routers.linear import LinearRouter

    def broken(self, prompt, answer=None):
        raise FloatingPointError("corrupt weights")

    monkeypatch.setattr(LinearRouter, "score_text", broken)
    g = gateway(learned_config(openai_up, anthropic_up, router_path, on_router_error=tier))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": HARD}])
    assert r.parse().choices[0].message.content == ("local answer" if tier == "weak" else "frontier answer")
    rec, step = decision_of(g, r.headers["x-tierwise-request-id"])
    assert rec.status == 200 and step["detail"]["router_error"] == "FloatingPointError"
    assert step["detail"]["tier"] == tier and "router failed" in step["reason"]


def test_a_shadow_run_in_flight_at_shutdown_is_finished_and_stored(
        gateway, openai_up, anthropic_up, router_path):  # noqa: F811
    from tests.doubles import Delay
    from tierwise.ledger.store import Ledger

    g = gateway(learned_config(openai_up, anthropic_up, router_path, target_share=None, threshold=-100.0,
                               shadow_rate=1.0))
    openai_up.default = Delay(0.5, Reply(text="slow local answer"))  # the shadow side
    anthropic_up.default = Reply(text="frontier answer")
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": EASY}])
    assert r.choices[0].message.content == "frontier answer"
    path = g.ledger.path
    g.stop()  # while the shadow call still waits on the local model
    led = Ledger.open(path)
    shadows = led.query(kind="shadow")
    led.close()
    assert len(shadows) == 1 and shadows[0].shadow["weak"]["ok"] is True
    assert shadows[0].shadow["weak"]["answer"] == "slow local answer"


def test_shadow_runs_count_in_the_global_budget_and_skip_when_it_is_spent(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                         router_path):
    """Every request served by the weak (local) tier, each shadowed on the paid strong tier ($0.00612 a run):
    a global budget of $0.02 pays for about three runs; a run its budget refuses is recorded as a skipped pair
    (how many are skipped and how many requests are downgraded first depends on the order of admissions). Before,
    the runs were counted by no budget (twelve paid)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.harness import wait_for

    cfg = learned_config(openai_up, anthropic_up, router_path, target_share=None, threshold=100.0, shadow_rate=1.0)
    cfg["budgets"] = {"limits": [{"name": "everything", "usd": 0.02}],
                      "routes": {"main": {"on_exhausted": "downgrade", "downgrade_to": "local"}}}
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer", usage=(10, 10))
    anthropic_up.default = Reply(text="frontier answer", usage=(40, 400))
    route = g.gateway.resolve("main")

    def ask(i: int) -> str:
        # (max_tokens 400: the double's 400 output tokens are within what the gateway lets an upstream bill)
        return oai(g).chat.completions.create(model="main", max_tokens=400, messages=[
            {"role": "user", "content": f"{EASY} #{i}"}]).choices[0].message.content

    answers: list[str] = []
    with ThreadPoolExecutor(6) as pool:
        for start in (0, 6):
            answers += pool.map(ask, range(start, start + 6))
            assert wait_for(lambda: not route._background, timeout=30)
    assert answers == ["local answer"] * 12
    paid = len(anthropic_up.requests)
    assert paid * 0.00612 <= 0.02 + 0.00612, paid
    g.flush()
    pairs = [r.shadow for r in g.ledger.query(kind="shadow")]
    skipped = [p for p in pairs if p.get("skipped")]
    assert all(not p["strong"]["ok"] and p["strong"]["answer"] == "" for p in skipped)
    assert all("budget 'everything' is spent" in p["skipped"] for p in skipped)
    assert all(p["strong"]["ok"] for p in pairs if not p.get("skipped"))  # a run either paid and kept, or skipped
