"""routers/adapt.py: the router adapted on the route's judged pairs (issue 22, `learned.adapt`)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

from tierwise.evaluation.online import PROMPT_CHARS, JudgedPair, OnlineValidator
from tierwise.routers.adapt import LiveAdapter, fit

BENCH = Path(__file__).resolve().parents[2] / "bench" / "routers_adapt.py"


def traffic(n: int, seed: int, unique: bool = False) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Two kinds of request: integrals (the strong tier right, the local one wrong) and capitals (both right).
    The router, trained elsewhere, ranks them the wrong way round."""
    rng = np.random.default_rng(seed)
    kind = rng.random(n) < 0.5
    ids = [f", case {i}" if unique else "" for i in rng.permutation(900_000)[:n] + 100_000]
    prompts = [f"Compute the integral of x^{rng.integers(2, 9)} times sin({rng.integers(1, 99)} x) dx{i}" if k
               else f"What is the capital of country number {rng.integers(1, 999)} in the atlas{i}?"
               for k, i in zip(kind, ids, strict=True)]
    strong = np.ones(n)
    weak = np.where(kind, 0.0, 1.0)
    prior = np.where(kind, 0.2, 0.8) + rng.normal(0, 0.05, n)
    return prompts, prior, strong, weak


def adapter_on(prompts, prior, strong, weak, *, keys=None, window=500, min_pairs=50, vwindow=500, **kw):
    v = OnlineValidator(window=vwindow, min_pairs=20, rounds=100, prompts_kept=window)
    for i, p in enumerate(prompts):
        v.add(JudgedPair(len(p), float(prior[i]), 0.5, float(strong[i]), float(weak[i]),
                         keys[i] if keys else "", p))
    return v, LiveAdapter(v, 0.5, min_pairs=min_pairs, window=window, **kw)


def auc(s: np.ndarray, gain: np.ndarray) -> float:  # how often a gain-1 request ranks above a gain-0 one
    return float((s[gain == 1][:, None] > s[gain == 0][None, :]).mean())


def test_the_router_decides_alone_until_enough_pairs_are_judged() -> None:
    prompts, prior, strong, weak = traffic(60, 0)
    _, a = adapter_on(prompts[:49], prior, strong, weak)
    assert a.refit() is False and a.live is None
    assert a.check() == a.validator.check()  # before the first fit: the router alone's verdict
    assert a.decide(prompts[55], 0.37, "") is None
    assert a.detail(None, "weak") == {"adapted": False, "min_pairs": 50}


def test_judged_pairs_give_the_ranking_the_traffic_shows() -> None:
    """The router, trained elsewhere, cannot tell the two kinds apart (its scores are noise); the live pairs can.
    The live side is ranked among out-of-fold predictions, so its evidence is not compressed towards the middle
    (ranked among the ridge's in-sample fits, as first built in session 25, the same evidence gave AUC 0.78)."""
    prompts, _, strong, weak = traffic(800, 1)
    prior = np.random.default_rng(9).random(800)
    _, a = adapter_on(prompts[:500], prior, strong, weak, prior_weight=300)
    assert a.refit() and a.live is not None
    fitted, thr, _ = a.live
    assert fitted.n == 500 and fitted.weight == pytest.approx(500 / 800)
    rest = range(500, 800)
    adapted = np.array([fitted.score(prompts[i], prior[i]) for i in rest])
    gain = (strong - weak)[500:]
    assert 0.4 < auc(prior[500:], gain) < 0.6
    assert auc(adapted, gain) > 0.8  # 0.84
    # the threshold is the target share's quantile of the out-of-fold adapted scores until traffic comes
    assert thr.threshold == pytest.approx(np.quantile(fitted.oof, 0.5), abs=0.02)
    s, t = a.decide(prompts[600], prior[600], "k")
    assert (s >= t) == bool(gain[100])


def test_the_online_estimate_of_the_adapted_route_is_out_of_fold() -> None:
    """Verdicts that are noise, on prompts each with its own words: a ridge fitted on the pairs reproduces their
    verdicts (in-sample APGR near 1); scored out of fold, the adaptation is no better than random."""
    rng = np.random.default_rng(0)
    words = ["alpha", "bravo", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper"]
    prompts = [" ".join(rng.choice(words, 3)) + f" token{i} other{i * 7} more{i * 13}" for i in range(300)]
    strong = np.ones(300)
    weak = (rng.random(300) < 0.5).astype(float)
    prior = rng.random(300)
    _, a = adapter_on(prompts, prior, strong, weak, prior_weight=0.0)
    assert a.refit() and a.summary is not None
    est = a.summary["estimate"]
    assert est["verdict"] == "not-better-than-random" and est["low"] < 0.5 < est["high"]
    fitted, _, _ = a.live
    in_sample = np.array([fitted.score(p, s) for p, s in zip(prompts, prior, strict=True)])
    assert auc(in_sample, strong - weak) > 0.9  # what an in-sample estimate would have claimed
    # while adapted, the route's demotion check reads this out-of-fold verdict, not the router alone's
    demote, why = a.check()
    assert demote and why.startswith("adapted: online APGR")


def test_the_refit_is_bounded_one_at_a_time_and_on_the_newest_window_of_pairs() -> None:
    prompts, prior, strong, weak = traffic(400, 2)
    prompts = [p + " x" * PROMPT_CHARS for p in prompts[:20]] + prompts[20:]
    v, a = adapter_on(prompts, prior, strong, weak, window=100, min_pairs=20, vwindow=300)
    held = v.pairs()
    assert len(held) == 300 and sum(1 for p in held if p.prompt) == 100  # prompts of the newest `window` only
    assert all(len(p.prompt) <= PROMPT_CHARS for p in held)
    with a._busy:  # a fit in flight: another is not started beside it
        assert a.refit() is False
    assert a.refit() and a.live[0].n == 100
    v.add(JudgedPair(3, float("nan"), 0.5, 1.0, 0.0, "", "nan"))  # a failed score carries no ranking evidence
    assert a.refit() and a.live[0].n == 99  # the NaN pair pushed the oldest prompt out and is not fitted
    assert a.due() is False  # refits every `every` pairs, not on each one
    for _ in range(9):
        a.due()
    assert a.due() is True


def test_concurrent_refits_leave_one_whole_fit() -> None:
    prompts, prior, strong, weak = traffic(200, 4)
    _, a = adapter_on(prompts, prior, strong, weak, min_pairs=20)
    done = []
    threads = [threading.Thread(target=lambda: done.append(a.refit())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(done) and a.live is not None and a.live[0].n == 200


def test_the_adapter_computes_what_the_measured_simulation_did() -> None:
    """bench/routers_adapt.py `tfidf-oof:1:300` is the out-of-fold variant measured in bench/RESULTS.md."""
    spec = importlib.util.spec_from_file_location("routers_adapt", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    prompts, prior, strong, weak = traffic(400, 3, unique=True)
    rng = np.random.default_rng(4)
    weak = np.where(rng.random(400) < 0.2, 1 - weak, weak)  # noisy verdicts
    live, rest = np.arange(200), np.arange(200, 400)
    f = {"prior": prior, "lsa": np.eye(400, 8, dtype=np.float32), "strong": strong, "weak": weak, "prompts": prompts}
    expected = bench.adapt("tfidf-oof:1:300", live, rest, f)
    a = fit([prompts[i] for i in live], prior[live], (strong - weak)[live], prior_weight=300)
    assert np.allclose([a.score(prompts[i], prior[i]) for i in rest], expected, atol=1e-6)


@pytest.mark.parametrize(("change", "match"), [
    ({"validation": None}, "adapt needs `validation`"),
    ({"target_share": None, "threshold": 0.5}, "adapt needs `validation`.*`target_share`"),
    ({"adapt": {"window": 600}}, "adapt.window must not exceed validation.window"),
    ({"adapt": {"min_pairs": 300, "window": 200}}, "min_pairs must not exceed window"),
    ({"adapt": {"min_pairs": 5}}, "min_pairs"),
    ({"adapt": {"window": 5000}}, "window"),
    ({"adapt": {"prior_weight": -1}}, "prior_weight"),
    ({"adapt": {"min_pair": 100}}, "min_pair"),
])
def test_the_adapt_option_is_checked_at_load(tmp_path, change, match) -> None:
    from tests.harness import make_config, two_tier_config
    from tierwise.errors import ConfigError

    route = {"policy": "learned", "router": "r.json", "strong": "frontier", "weak": "local", "target_share": 0.5,
             "shadow_rate": 0.2, "validation": {"window": 500}, "adapt": {}}
    route.update(change)
    route = {k: v for k, v in route.items() if v is not None}
    with pytest.raises(ConfigError, match=match):
        make_config(two_tier_config("http://127.0.0.1:9", "http://127.0.0.1:9", routes={"main": route}), tmp_path)


def test_a_restart_keeps_the_prompts_the_adaptation_needs_and_refuses_oversized_ones(tmp_path) -> None:
    import json

    from tierwise.routers.route_memory import RouteMemory

    prompts, prior, strong, weak = traffic(150, 6)
    v, a = adapter_on(prompts, prior, strong, weak, window=120, min_pairs=50, vwindow=150)
    a.refit()
    path = tmp_path / "state.json"
    RouteMemory(path, "r", 0.5, validator=v).write(RouteMemory(path, "r", 0.5, validator=v).dump())
    v2, a2 = adapter_on([], prior, strong, weak, window=120, min_pairs=50, vwindow=150)
    assert RouteMemory(path, "r", 0.5, validator=v2).restore()
    assert v2.pairs() == v.pairs() and sum(1 for p in v2.pairs() if p.prompt) == 120
    assert a2.refit() and np.array_equal(a2.live[0].oof, a.live[0].oof)
    data = json.loads(path.read_text())
    data["pairs"][-1][6] = "x" * (PROMPT_CHARS + 1)
    path.write_text(json.dumps(data))
    v3, _ = adapter_on([], prior, strong, weak, window=120, min_pairs=50, vwindow=150)
    assert not RouteMemory(path, "r", 0.5, validator=v3).restore() and v3.pairs() == []


def test_eval_adapt_simulates_the_adaptation_on_a_data_set(tmp_path) -> None:
    """`tierwise eval DATA -r saved.json --adapt N`: the first N questions (a fixed random order) are the judged
    pairs, the router alone and adapted are scored on the rest."""
    import json

    from click.testing import CliRunner

    from tierwise.cli import main
    from tierwise.evaluation.loaders import load_jsonl
    from tierwise.routers import make_router, save_router

    fixture = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
    router = str(save_router(make_router("linear").fit(load_jsonl(fixture)), tmp_path / "router"))
    prompts, _, strong, weak = traffic(400, 7)
    weak = 1.0 - weak  # here the local model fails the short questions: the router ranks them the wrong way round
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "strong": s, "weak": w}) + "\n"
                            for p, s, w in zip(prompts, strong, weak, strict=True)))
    out = CliRunner().invoke(main, ["eval", str(data), "-r", router, "--adapt", "200", "--no-cv", "--ci", "100",
                                    "--json"])
    assert out.exit_code == 0, out.output
    sim = json.loads(out.output)["adapt"]["router"]
    assert sim["judged"] == 200 and sim["rest"] == 200
    assert sim["adapted"]["apgr"] > sim["router"]["apgr"] and sim["lead"]["low"] <= sim["lead"]["value"] <= sim["lead"]["high"]
    out = CliRunner().invoke(main, ["eval", str(data), "-r", router, "--adapt", "200", "--no-cv", "--ci", "0"])
    assert out.exit_code == 0, out.output
    assert "adapted on the first 200 judged pairs" in out.output and "router alone" in out.output
    out = CliRunner().invoke(main, ["eval", str(data), "-r", "linear", "--adapt", "200"])
    assert out.exit_code == 2 and "--adapt simulates adapting a saved router" in out.output
    out = CliRunner().invoke(main, ["eval", str(data), "-r", router, "--adapt", "395", "--no-cv"])
    assert out.exit_code == 2 and "--adapt needs between" in out.output
    # more pairs than a live route ever fits on (adapt.window ≤ 2,000) would promise a gain it cannot have
    big = tmp_path / "big.jsonl"
    prompts, _, strong, weak = traffic(2100, 8)
    big.write_text("".join(json.dumps({"prompt": p, "strong": s, "weak": 1.0 - w}) + "\n"
                           for p, s, w in zip(prompts, strong, weak, strict=True)))
    out = CliRunner().invoke(main, ["eval", str(big), "-r", router, "--adapt", "2050", "--no-cv", "--ci", "0"])
    assert out.exit_code == 2 and "2000" in out.output, out.output  # before: fitted on 2,050 pairs
