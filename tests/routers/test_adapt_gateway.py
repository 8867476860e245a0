"""Acceptance (issue 22, `learned.adapt`): a router trained on one benchmark (MMLU) serves a `learned` route
that receives another's traffic (GSM8K) over real HTTP with the official openai SDK, shadow sampling and
online validation on. The judge (the frontier double) grades each answer by the recorded correctness of the
model that stands behind it. Once enough judged pairs are in, the route refits its adaptation in the shadow
task, routes by the adapted score (differently from the router alone), records the adaptation on the trace,
in the ledger and in `tierwise eval --ledger` / `tierwise boundary`, and its out-of-fold estimate on the judged
pairs is above the router alone's on the same pairs. The RouteLLM data are read from $TIERWISE_DATA or
../shared/data."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, unavailable, wait_for
from tests.routers.test_learned_route import decision_of
from tierwise.evaluation.loaders import data_root, load_benchmark
from tierwise.routers import make_router, save_router

if data_root() is None:
    unavailable("RouteLLM data not on this machine (set TIERWISE_DATA)")
N, MIN_PAIRS, EVERY = 250, 100, 25


@pytest.fixture(scope="module")
def data():
    import numpy as np

    mmlu, gsm = load_benchmark("mmlu"), load_benchmark("gsm8k")
    order = np.random.default_rng(0).permutation(len(gsm.prompts))[:N]
    return mmlu.take(range(0, len(mmlu.prompts), 3)), gsm.take(order)


@pytest.fixture(scope="module")
def router_path(data, tmp_path_factory):
    return str(save_router(make_router("linear").fit(data[0]), tmp_path_factory.mktemp("router") / "mmlu"))


def texts(x: Any) -> list[str]:
    if isinstance(x, str):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in texts(v)]
    if isinstance(x, list):
        return [t for v in x for t in texts(v)]
    return []


def recorded_judge(traffic):
    """The frontier double: answers, and as the judge grades an answer by its model's recorded correctness."""
    outcome = {p[:200]: (s, w) for p, s, w in zip(traffic.prompts, traffic.strong, traffic.weak, strict=True)}

    def reply(rec):
        body = "\n".join(texts(rec.body.get("messages")))
        if "You are grading" not in body:
            return Reply(text="frontier answer")
        s, w = next(v for k, v in outcome.items() if k in body)
        right = w if "local answer" in body else s
        return Reply(text=f"Checked.\nVERDICT: {'good' if right >= 0.5 else 'poor'}")
    return reply


def test_a_learned_route_adapts_to_its_judged_traffic_and_routes_better_out_of_fold(
        gateway, openai_up, anthropic_up, router_path, data, tmp_path):  # noqa: F811
    traffic = data[1]
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router_path, "strong": "frontier", "weak": "local", "target_share": 0.5,
        "shadow_rate": 1.0, "validation": {"window": 400, "min_pairs": 50, "rounds": 200, "demote": False},
        "adapt": {"min_pairs": MIN_PAIRS, "every": EVERY, "window": 400}}})
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = recorded_judge(traffic)
    client = oai(g)
    route = g.gateway.resolve("main")

    def ask(prompt):
        r = client.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": prompt}])
        assert wait_for(lambda: not route._background, timeout=60)  # the shadow run, its judging and any refit
        return decision_of(g, r.headers["x-tierwise-request-id"])

    seen = [ask(p) for p in traffic.prompts]
    adapt = [step["detail"]["adapt"] for _, step in seen]
    # 1. the router decides alone until MIN_PAIRS judged pairs are in (one pair per request here), then adapts
    assert all(not a["adapted"] for a in adapt[:MIN_PAIRS])
    assert all(a["adapted"] for a in adapt[MIN_PAIRS:])
    assert {a["pairs"] for a in adapt[MIN_PAIRS:]} == set(range(MIN_PAIRS, N, EVERY))  # refitted every EVERY pairs
    rec, step = seen[-1]
    assert rec.reason.startswith("adapted score") and "judged pairs; router score" in rec.reason
    assert step["detail"]["adapt"]["threshold_source"].startswith("adapted scores")
    # 2. it routes differently from the router alone, near the target share
    after = adapt[MIN_PAIRS:]
    tiers = [step["detail"]["tier"] for _, step in seen[MIN_PAIRS:]]
    assert sum(t != a["router_tier"] for t, a in zip(tiers, after, strict=True)) >= 10
    assert 0.3 <= tiers.count("strong") / len(tiers) <= 0.7
    # 3. out of fold on the judged pairs, the adapted route ranks them better than the router alone
    summary = route.adapter.summary
    assert summary["pairs"] == N  # the last refit, after the last request
    assert summary["estimate"]["apgr"] > summary["router_alone"]["apgr"]
    assert summary["lead"]["value"] > 0
    # 4. the ledger's shadow pairs say which were routed by an adapted score; the CLI shows the adaptation
    g.flush()
    shadows = g.ledger.query(kind="shadow", route="main")
    assert sum("adapted" in s.shadow for s in shadows) == N - MIN_PAIRS
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    from tierwise.cli import main

    out = CliRunner().invoke(main, ["eval", "--ledger", "-c", str(tmp_path / "tierwise.yaml"), "--ci", "0"])
    assert out.exit_code == 0, out.output
    assert f"adapted on {N} judged pairs" in out.output and "out-of-fold APGR" in out.output
    out = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml"), "--json"])
    assert out.exit_code == 0, out.output
    online = json.loads(out.output)["main"]["online"]
    assert online["adapted"]["pairs"] == N and "adapted on" in online["sentence"]
