"""`within.signal: router` (issue 21, round 38): the within-type signal of a reflective route is the score a saved
router gives the prompt instead of the log of the prompt's length; a router that cannot be loaded is a configuration
error naming the key; the route's default stays the length."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, wait_for
from tests.learning.test_reflective_route import judge_or_answer
from tierwise.canonical import Message, Request, TextBlock
from tierwise.errors import ConfigError
from tierwise.evaluation.loaders import load_jsonl
from tierwise.learning.triage import task_type_of
from tierwise.learning.within import WithinSettings
from tierwise.learning.within_signal import RequestSignal, request_signal
from tierwise.routers import load_router, make_router, save_router

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
PROMPTS = ["What is 17 times 23? Show the steps.", "Name the capital of France.",
           "Prove that there are infinitely many primes, then give three examples of twin primes."]


def saved_router(folder: Path) -> str:
    return str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), folder / "router"))


def ask(text: str) -> Request:
    return Request(model="main", messages=[Message("user", [TextBlock(text)])])


def test_signal_router_needs_a_router_path() -> None:
    with pytest.raises(ValidationError, match="within.router"):
        WithinSettings(enabled=True, signal="router")
    assert WithinSettings().signal == "length"  # the default


def test_the_signal_is_the_saved_router_s_score(tmp_path: Path) -> None:
    path = saved_router(tmp_path)
    router = load_router(path)
    sig = request_signal(WithinSettings(enabled=True, signal="router", router=path), tmp_path, "main")
    scores = [sig.of(ask(p)) for p in PROMPTS]
    assert scores == [pytest.approx(float(router.score_text(p))) for p in PROMPTS]
    assert scores != [pytest.approx(math.log1p(len(p))) for p in PROMPTS]
    assert len({round(float(s or 0.0), 9) for s in scores}) == len(PROMPTS)  # the router tells these prompts apart
    # a relative path is read from the config's folder
    rel = request_signal(WithinSettings(enabled=True, signal="router", router="router.json"), tmp_path, "main")
    assert rel.of(ask(PROMPTS[0])) == pytest.approx(scores[0])
    # the default: the log of the prompt's length
    assert RequestSignal().of(ask(PROMPTS[0])) == pytest.approx(math.log1p(len(PROMPTS[0])))


def test_a_router_that_scores_nan_gives_no_signal(tmp_path: Path) -> None:
    router = load_router(saved_router(tmp_path))
    router.coef[...] = math.nan  # a damaged router: its weights not numbers
    sig = RequestSignal(router)
    assert not math.isfinite(float(router.score_text(PROMPTS[0])))
    assert sig.of(ask(PROMPTS[0])) is None  # the request takes its type's estimate


def test_a_missing_router_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"routes\.main\.within\.router"):
        request_signal(WithinSettings(enabled=True, signal="router", router="nope.json"), tmp_path, "main")


def test_the_route_gives_the_loop_the_router_s_score(gateway, openai_up, anthropic_up, tmp_path) -> None:  # noqa: F811
    path = saved_router(tmp_path)
    router = load_router(path)
    route = {"policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.75,
             "within": {"signal": "router", "router": path}}
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": route}))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = judge_or_answer("good")
    r = g.gateway.resolve("main")
    assert r.loop.settings.within.enabled and r.loop.settings.within.signal == "router"
    for p in PROMPTS:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": p}])
    assert wait_for(lambda: not r._background, timeout=30)
    by_type: dict[str, list[float]] = {}
    for p in PROMPTS:
        by_type.setdefault(task_type_of(ask(p)), []).append(float(router.score_text(p)))
    for t, xs in by_type.items():  # the within-type statistics the loop keeps are over the router's scores
        ts = r.loop.within.types[t]
        assert ts.n == len(xs) and ts.mean == pytest.approx(sum(xs) / len(xs))
