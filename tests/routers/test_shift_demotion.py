"""Acceptance (issue 22): a router trained on one benchmark (GSM8K) serves a `learned` route with
shadow sampling on; traffic from another benchmark (MMLU) is replayed through the gateway over real
HTTP with the official openai SDK. The route sees the shift, demotes itself to the frontier tier
within a bounded number of requests and says why in the trace and the ledger; when GSM8K-like
traffic returns it is re-promoted. The RouteLLM data are read from $TIERWISE_DATA or ../shared/data."""

from __future__ import annotations

import time

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, unavailable
from tierwise.evaluation.loaders import data_root, load_benchmark
from tierwise.routers import make_router, save_router
from tierwise.routers.shift import attach_profile

if data_root() is None:
    unavailable("RouteLLM data not on this machine (set TIERWISE_DATA)")
WINDOW, DEMOTE_ABOVE, PROMOTE_BELOW = 40, 0.25, 0.15
BOUND = int(DEMOTE_ABOVE * WINDOW) + 1  # far requests needed at most, once the window is full


@pytest.fixture(scope="module")
def data():
    gsm, mmlu = load_benchmark("gsm8k"), load_benchmark("mmlu")
    return gsm.take(range(1000)), gsm.take(range(1000, 1307)), mmlu.take(range(0, 14000, 200))


@pytest.fixture(scope="module")
def router_path(data, tmp_path_factory):
    train = data[0]
    r = attach_profile(make_router("linear").fit(train), train.prompts)
    return str(save_router(r, tmp_path_factory.mktemp("router") / "gsm8k"))


def ledger_row(g, rid):
    for _ in range(300):
        g.flush()
        rec = g.ledger.get(rid)
        if rec is not None:
            return rec
        time.sleep(0.02)
    raise AssertionError(f"no ledger row for {rid}")


def test_a_learned_route_demotes_itself_on_shifted_traffic_and_comes_back(
        gateway, openai_up, anthropic_up, router_path, data):  # noqa: F811
    _, gsm_heldout, mmlu = data
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router_path, "strong": "frontier", "weak": "local", "target_share": 0.3,
        "shadow_rate": 0.3,
        "shift": {"window": WINDOW, "min_requests": 20, "demote_above": DEMOTE_ABOVE,
                  "promote_below": PROMOTE_BELOW}}}))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    client = oai(g)

    def ask(prompt):
        r = client.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": prompt}])
        rec = ledger_row(g, r.headers["x-tierwise-request-id"])
        step = next(s for s in rec.steps if s["kind"] == "decision")
        return r.parse().choices[0].message.content, rec, step

    # 1. Traffic like the training data: routed by score, never demoted, the distance on every trace.
    first = [ask(p) for p in gsm_heldout.prompts[:WINDOW]]
    assert not any(step["detail"]["shift"]["demoted"] for _, _, step in first)
    assert {answer for answer, _, _ in first} == {"local answer", "frontier answer"}
    assert all(0.0 <= step["detail"]["shift"]["percentile"]["lsa"] <= 1.0 for _, _, step in first)

    # 2. MMLU questions: demoted within BOUND requests, then everything goes to the frontier tier.
    second = [ask(p) for p in mmlu.prompts[:WINDOW]]
    demoted = [step["detail"]["shift"]["demoted"] for _, _, step in second]
    at = demoted.index(True)
    assert at + 1 <= BOUND, f"demoted only after {at + 1} shifted requests"
    assert all(demoted[at:])
    for answer, rec, step in second[at:]:
        assert answer == "frontier answer" and rec.decision == "frontier"
        assert step["detail"]["demoted"] is True and step["detail"]["tier"] == "strong"
        assert "off the router's training distribution" in step["detail"]["demotion_reason"]
        assert rec.reason.startswith("demoted: traffic is off the router's training distribution")
    assert "router said" in second[at][1].reason  # what the router would have done is kept
    # Shadow sampling keeps running while demoted: the local tier's answers are still collected.
    assert openai_up.wait_until(lambda: len(openai_up.requests) >= 1)

    # 3. GSM8K-like traffic again: re-promoted once the far share falls below PROMOTE_BELOW (hysteresis).
    third = [ask(p) for p in gsm_heldout.prompts[WINDOW:3 * WINDOW]]
    back = [step["detail"]["shift"]["demoted"] for _, _, step in third]
    assert back[0] and not back[-1]
    up = back.index(False)
    assert up + 1 >= WINDOW - int(PROMOTE_BELOW * WINDOW) - 1
    answer, rec, step = third[up]
    assert step["detail"].get("promoted") is True and rec.reason.startswith("re-promoted")
    for _ in range(100):
        g.flush()
        if g.ledger.query(kind="shadow"):
            break
        time.sleep(0.05)
    assert g.ledger.query(kind="shadow")


def test_shift_needs_a_router_with_a_training_profile(tmp_path, openai_up, anthropic_up, data):  # noqa: F811
    from tests.harness import make_config
    from tierwise.errors import ConfigError
    from tierwise.server.build import build_gateway

    bare = str(save_router(make_router("linear").fit(data[0].take(range(100))), tmp_path / "bare"))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": bare, "strong": "frontier", "weak": "local", "target_share": 0.3,
        "shift": {}}})
    with pytest.raises(ConfigError, match="no training profile"):
        build_gateway(make_config(cfg, tmp_path))
    cfg["routes"]["main"]["shift"] = {"promote_below": 0.5, "demote_above": 0.2}
    with pytest.raises(ConfigError, match="promote_below"):
        make_config(cfg, tmp_path)
    cfg["routes"]["main"]["shift"] = {"space": "embedding"}
    prof = attach_profile(make_router("linear").fit(data[0].take(range(100))), data[0].prompts[:100])
    cfg["routes"]["main"]["router"] = str(save_router(prof, tmp_path / "with-profile"))
    with pytest.raises(ConfigError, match="no 'embedding' space"):
        build_gateway(make_config(cfg, tmp_path))


def test_a_shift_route_with_a_target_share_refits_its_threshold_on_recent_traffic_by_default(
        gateway, openai_up, anthropic_up, router_path, data):  # noqa: F811
    gsm_heldout = data[1]
    sources = {}
    for name, shift in (("refit", {"refit_min": 10, "refit_window": 20}),
                        ("kept", {"refit_min": 10, "refit_window": 20, "refit_threshold": False})):
        g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
            "policy": "learned", "router": router_path, "strong": "frontier", "weak": "local", "target_share": 0.3,
            "shift": shift}}))
        client = oai(g)
        for p in gsm_heldout.prompts[:20]:
            r = client.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": p}])
        step = next(s for s in ledger_row(g, r.headers["x-tierwise-request-id"]).steps if s["kind"] == "decision")
        sources[name] = step["detail"]["shift"]["threshold_source"]
    assert sources["refit"].startswith("recent traffic") and sources["kept"] == "training"


def test_one_key_sending_far_prompts_does_not_demote_the_route_for_the_others(
        gateway, openai_up, anthropic_up, router_path, data, monkeypatch):  # noqa: F811
    """The shift window is shared by every client of the route: one key (session 21's attack round) sending
    prompts unlike the training data (MMLU to a GSM8K router) demoted the route for everyone, whose
    GSM8K-like requests then all went to the frontier (a cost attack on the operator). No one key decides:
    the far share is taken without each key in turn. When the others' traffic shifts too, it demotes."""
    _, gsm_heldout, mmlu = data
    monkeypatch.setenv("TEAM_A", "key-team-a")
    monkeypatch.setenv("TEAM_B", "key-team-b")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router_path, "strong": "frontier", "weak": "local", "target_share": 0.3,
        "shift": {"window": WINDOW, "min_requests": 20, "demote_above": DEMOTE_ABOVE,
                  "promote_below": PROMOTE_BELOW}}})
    cfg["server"]["api_keys_env"] = ["TEAM_A", "TEAM_B"]
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    a, b = oai(g, api_key="key-team-a"), oai(g, api_key="key-team-b")

    def demoted(client, prompt) -> bool:
        r = client.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": prompt}])
        step = next(s for s in ledger_row(g, r.headers["x-tierwise-request-id"]).steps if s["kind"] == "decision")
        return bool(step["detail"]["shift"]["demoted"])

    far = mmlu.prompts
    victim = []
    for i in range(2 * WINDOW):  # B sends two far prompts for each of A's
        assert not demoted(b, far[2 * i % len(far)])
        assert not demoted(b, far[(2 * i + 1) % len(far)])
        victim.append(demoted(a, gsm_heldout.prompts[i]))
    assert not any(victim)
    # both keys' traffic shifts: the route demotes (a shift seen by more than one key is a shift)
    assert any(demoted(a if i % 2 else b, far[-1 - i]) for i in range(WINDOW))
