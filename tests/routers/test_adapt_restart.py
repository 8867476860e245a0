"""`learned.adapt` across a gateway restart (routers/adapt.py, routers/route_memory.py). The adapted score has its
own threshold window: seeded by each fit with the judged pairs' out-of-fold adapted scores, then filled by recent
traffic's adapted scores. Before session 27 that window was not saved: a restarted route fitted again on its saved
pairs and routed by a threshold from the seeds, whatever the traffic had said, until traffic refilled it. Now the
state file keeps the fit's pairs (by index) and the window, and the restarted route routes its first requests by
the same fit and the threshold the traffic had refitted. Over real HTTP with the official openai SDK."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, wait_for
from tests.routers.test_learned_route import decision_of
from tests.routers.test_threshold_refit import prompt, world  # noqa: F401
from tierwise.routers.route_memory import memory_path

FIT, TRAFFIC, WINDOW = 12, 30, 20


def judge_by_hard_words(rec):
    """The frontier double: answers; as the judge, grades the local answer poor on prompts with 5+ hard words."""
    body = json.dumps(rec.body)
    if "You are grading" not in body:
        return Reply(text="frontier answer")
    hard = sum(w in body for w in ("prove", "derive", "integral", "eigenvalue", "theorem", "lemma"))
    poor = "local answer" in body and hard >= 5
    return Reply(text=f"Checked.\nVERDICT: {'poor' if poor else 'good'}")


def adapt_route(path: str, shadow_rate: float) -> dict:
    return {"policy": "learned", "router": path, "strong": "frontier", "weak": "local", "target_share": 0.3,
            "shadow_rate": shadow_rate, "refit_window": WINDOW, "refit_min": 10,
            "validation": {"window": 100, "min_pairs": 5, "rounds": 50, "demote": False},
            # one fit, at FIT judged pairs; the requests after it only fill the threshold's window
            "adapt": {"min_pairs": FIT, "window": 100, "every": 10_000}}


def test_the_adapted_threshold_window_survives_a_restart(gateway, openai_up, anthropic_up, world):  # noqa: F811
    path, traffic = world
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = judge_by_hard_words
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": adapt_route(path, 1.0)})
    g = gateway(cfg)
    route = g.gateway.resolve("main")

    def ask(gw, text):
        r = oai(gw).chat.completions.with_raw_response.create(model="main",
                                                              messages=[{"role": "user", "content": text}])
        assert wait_for(lambda: not gw.gateway.resolve("main")._background, timeout=30)
        return decision_of(gw, r.headers["x-tierwise-request-id"])[1]["detail"]

    seen = [ask(g, p) for p in traffic[:FIT + TRAFFIC]]
    assert not seen[FIT - 1]["adapt"]["adapted"] and seen[FIT]["adapt"]["adapted"]
    a = route.adapter.live[0]
    assert a.n == FIT  # never refitted: the window holds the traffic's adapted scores
    window = [d["adapt"]["score"] for d in seen[-WINDOW:]]
    before = seen[-1]["adapt"]
    assert before["threshold"] == pytest.approx(np.quantile(window, 0.7), abs=1e-4)
    assert before["threshold_source"].endswith(f"({WINDOW} requests)")
    g.stop()  # its shutdown writes the state

    g2 = gateway(cfg)
    after = ask(g2, traffic[FIT + TRAFFIC])["adapt"]
    # before the fix: fitted again on all 42 saved pairs, its threshold the quantile of their out-of-fold scores
    assert after["threshold"] == pytest.approx(before["threshold"], abs=1e-4)
    assert after["pairs"] == FIT
    assert after["threshold_source"] == before["threshold_source"]
    a2 = g2.gateway.resolve("main").adapter.live[0]
    assert np.array_equal(a2.oof, a.oof) and np.array_equal(a2.coef, a.coef)  # the same fit, fitted again
    # the next refit comes when it would have: FIT + TRAFFIC + 1 judged pairs since the fit, `every` not reached
    assert g2.gateway.resolve("main").adapter._added == TRAFFIC + 1
    saved = json.loads(memory_path(g.cfg.ledger.resolved_path(g.cfg.base_dir), "main").read_text())
    assert len(saved["adapt"]["fit"]) == FIT and len(saved["adapt"]["scores"]) == WINDOW  # by index: bounded


def test_a_file_saved_without_the_adaptations_state_still_adapts_at_once(  # noqa: F811
        gateway, openai_up, anthropic_up, world):  # noqa: F811
    """A file of session 26 (pairs with prompts, no `adapt` part): the route fits on its saved pairs at build."""
    path, traffic = world
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = judge_by_hard_words
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": adapt_route(path, 1.0)})
    g = gateway(cfg)
    rng = random.Random(0)
    for p in rng.sample(traffic, FIT + 3):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": p}])
        assert wait_for(lambda: not g.gateway.resolve("main")._background, timeout=30)
    g.stop()
    file = memory_path(g.cfg.ledger.resolved_path(g.cfg.base_dir), "main")
    data = json.loads(file.read_text())
    data.pop("adapt", None)
    file.write_text(json.dumps(data))
    g2 = gateway(cfg)
    live = g2.gateway.resolve("main").adapter.live
    assert live is not None and live[0].n == FIT + 3 and live[1].source.startswith("adapted scores")


@pytest.mark.parametrize("change", ["adapt taken out", "another router"])
def test_prompts_the_route_no_longer_keeps_leave_the_disk_when_it_starts(  # noqa: F811
        gateway, openai_up, anthropic_up, world, tmp_path, change):  # noqa: F811
    """A state file holds judged prompts for a route that adapts. With `adapt` taken out of the config, or for a
    route given another router (the file is not restored), those prompts stayed on disk until traffic made the
    route save; a route that got none kept them indefinitely. Now the file is rewritten as the route is built."""
    from tests.harness import make_config
    from tierwise.routers.route_memory import FORMAT, router_fingerprint

    path, traffic = world
    route = adapt_route(path, 1e-6)
    if change == "adapt taken out":
        del route["adapt"]
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": route})
    c = make_config(cfg, tmp_path)
    file = memory_path(c.ledger.resolved_path(c.base_dir), "main")
    fingerprint = router_fingerprint(path) + ("" if change == "adapt taken out" else "-older")
    file.write_text(json.dumps({
        "format": FORMAT, "router": fingerprint, "target_share": 0.3, "saved_at": 0,
        "pairs": [[len(p), 0.5, 0.5, 1.0, float(i % 2), "", p] for i, p in enumerate(traffic[:20])]}))
    g = gateway(cfg)
    state = json.loads(file.read_text())  # rewritten as the gateway started, before any request
    assert not any("question" in json.dumps(row) for row in state.get("pairs", [])), state  # before: all 20
    if change == "adapt taken out":  # the judged outcomes are kept, only the prompts go
        assert len(state["pairs"]) == 20 and len(g.gateway.resolve("main").validator.pairs()) == 20


def test_the_state_file_of_a_renamed_route_is_named_at_start(  # noqa: F811
        gateway, openai_up, anthropic_up, world, tmp_path, caplog):  # noqa: F811
    """A learned route renamed in the config (or removed, or given `remember: false`) leaves its state file beside
    the ledger: up to 64 MiB, with an adapting route's judged prompts, that nothing read, rewrote or reported.
    Now the gateway names each such file in a warning as it starts (and deletes nothing)."""
    import logging

    from tests.harness import make_config

    path, traffic = world
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": adapt_route(path, 1e-6)})
    c = make_config(cfg, tmp_path)
    ledger = c.ledger.resolved_path(c.base_dir)
    old = memory_path(ledger, "main-before-rename")
    old.write_text(json.dumps({"format": 1, "pairs": [[10, 0.5, 0.5, 1.0, 0.0, "", traffic[0]]]}))
    caplog.set_level(logging.WARNING, logger="tierwise")
    g = gateway(cfg)
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": traffic[1]}])
    g.stop()
    named = [r.getMessage() for r in caplog.records if old.name in r.getMessage()]
    assert len(named) == 1 and "belongs to no learned route" in named[0], named  # before: nothing said
    assert old.exists() and memory_path(ledger, "main").exists()  # deleted nothing; the route's own is not named
    assert not [r for r in caplog.records if memory_path(ledger, "main").name + " " in r.getMessage()]
