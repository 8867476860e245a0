"""A deployed `learned` route keeps its live state across a restart (routers/route_memory.py): the re-fit
window its threshold is taken from, one key's cap in it, the shift window and the demotion, and the online
estimate's judged pairs. Over real HTTP with the official openai SDK; the gateway is stopped (its shutdown
writes the state) and a new one is built from the same config and ledger directory."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.routers.test_learned_route import decision_of
from tests.routers.test_threshold_refit import MIN, SHARE, WINDOW, prompt, route, world  # noqa: F401
from tierwise.evaluation.online import JudgedPair, OnlineValidator
from tierwise.routers import load_router
from tierwise.routers.refit import ThresholdRefit
from tierwise.routers.route_memory import RouteMemory, memory_path


def ask(g, text, api_key="test"):
    r = oai(g, api_key=api_key).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": text}])
    return decision_of(g, r.headers["x-tierwise-request-id"])[1]


def state_file(g):
    return memory_path(g.cfg.ledger.resolved_path(g.cfg.base_dir), "main")


def test_the_refitted_threshold_survives_a_restart(gateway, openai_up, anthropic_up, world, tmp_path):  # noqa: F811
    path, traffic = world
    scores = [load_router(path).score_text(p) for p in traffic]
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": route(path)})
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    g = gateway(cfg)
    for p in traffic[:WINDOW]:
        step = ask(g, p)
    before = step["detail"]["threshold"]
    assert step["detail"]["threshold_source"] == f"recent traffic ({WINDOW} requests)"
    g.stop()
    saved = json.loads(state_file(g).read_text())
    assert oct(os.stat(state_file(g)).st_mode & 0o777) == "0o600"
    assert "question" not in json.dumps(saved)  # scores and key names, never prompt text

    g2 = gateway(cfg)
    step = ask(g2, traffic[WINDOW])
    # Without the memory the first request after a restart is routed by the training quantile.
    assert step["detail"]["threshold_source"] == f"recent traffic ({WINDOW} requests)"
    # the restored window's quantile: what the route used before it stopped
    assert step["detail"]["threshold"] == pytest.approx(np.quantile(scores[:WINDOW], 1 - SHARE))
    assert step["detail"]["threshold"] == pytest.approx(before)


def test_a_state_file_from_another_router_or_a_damaged_one_is_ignored(gateway, openai_up, anthropic_up, world):  # noqa: F811
    path, traffic = world
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": route(path)})
    g = gateway(cfg)
    for p in traffic[:MIN + 10]:
        ask(g, p)
    g.stop()
    f = state_file(g)
    good = f.read_text()

    f.write_text(good.replace('"target_share":0.3', '"target_share":0.4'))
    assert ask(gateway(cfg), traffic[0])["detail"]["threshold_source"] == "training"

    for damaged in ("{", "[]", good.replace('"scores":[', '"scores":["x",'), good.replace('"keys":[', '"keys":[99999,'),
                    json.dumps({**json.loads(good), "refit": {"scores": [1e400], "keys": [0], "key_names": [""]}})):
        f.write_text(damaged)
        step = ask(gateway(cfg), traffic[0])  # the route starts fresh and serves
        assert step["detail"]["threshold_source"] == "training"

    f.write_text(good)
    router_files = [path] if os.path.isfile(path) else [os.path.join(d, n) for d, _, ns in os.walk(path) for n in ns]
    st = os.stat(router_files[0])
    os.utime(router_files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the router saved again
    assert ask(gateway(cfg), traffic[0])["detail"]["threshold_source"] == "training"  # the router file changed


def test_one_keys_cap_on_the_window_holds_after_a_restart():
    """The window is restored score by score through `add`, so a key at its cap stays at it."""
    r = ThresholdRefit(0.5, 0.3, window=100, min_scores=20, key_share=0.25)
    rng = random.Random(3)
    for i in range(300):
        r.add(rng.random(), "flooder" if i % 4 else "victim")
    scores, keys = r.snapshot()
    assert keys.count("flooder") == 25
    again = ThresholdRefit(0.5, 0.3, window=100, min_scores=20, key_share=0.25)
    again.restore(scores, keys)
    assert again.snapshot() == (scores, keys)
    assert again.threshold == pytest.approx(np.quantile(scores, 0.7))
    # a file claiming 100 flooder scores gives the flooder its cap, not the window
    again.restore([0.0] * 100, ["flooder"] * 100)
    assert again.snapshot()[1].count("flooder") == 25


def test_the_shift_windows_keys_come_back_after_a_restart():
    """The shift window is saved with the key of each percentile: restored through the same path, one key's cap
    and the rule that no one key decides the verdict hold after a restart (a file written before session 21,
    without keys, comes back as unnamed requests)."""
    from tierwise.routers.shift import ShiftWindow

    w = ShiftWindow(window=40, min_requests=10, key_share=0.25)
    for i in range(120):
        w.add(0.99 if i % 2 else 0.5, "flooder" if i % 2 else "victim")
    assert w.keys().count("flooder") == 10 and not w.off  # its cap; and far on its own: no demotion
    again = ShiftWindow(window=40, min_requests=10, key_share=0.25)
    again.restore(w.percentiles(), w.off, w.keys())
    assert (again.percentiles(), again.keys()) == (w.percentiles(), w.keys())
    assert not again.add(0.99, "flooder").off
    again.restore([0.99] * 40, False, ["flooder"] * 40)  # a file claiming the whole window for one key
    assert again.keys().count("flooder") == 10
    again.restore([0.5] * 40, False)
    assert again.keys() == [""] * 40


def test_a_demoted_route_stays_demoted_after_a_restart(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """Trained on one vocabulary, shown another: demoted. After the restart the first request of the same
    off-distribution traffic is still answered by the fallback, with the reason."""
    from tierwise.evaluation.dataset import OutcomeDataset
    from tierwise.routers import make_router, save_router
    from tierwise.routers.shift import attach_profile

    rng = random.Random(5)
    home = "apple pear plum grape melon berry lemon lime peach mango".split()
    away = "tensor kernel lattice spinor manifold fibre bundle sheaf functor topos".split()
    train = [" ".join(rng.choices(home, k=8)) for _ in range(200)]
    data = OutcomeDataset("t", train, [1.0] * 200, [float(rng.random() < 0.5) for _ in train], [str(i) for i in range(200)])
    path = str(save_router(attach_profile(make_router("linear").fit(data), train), tmp_path / "r"))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": path, "strong": "frontier", "weak": "local", "target_share": 0.3,
        "shift": {"window": 20, "min_requests": 10}}})
    g = gateway(cfg)
    for _ in range(20):
        step = ask(g, " ".join(rng.choices(away, k=8)))
    assert step["detail"]["shift"]["demoted"] is True
    g.stop()
    step = ask(gateway(cfg), " ".join(rng.choices(away, k=8)))
    assert step["detail"]["shift"]["demoted"] is True and step["detail"]["tier"] == "strong"
    assert "off the router's training distribution" in step["detail"]["demotion_reason"]
    assert step["detail"]["shift"]["window"] == 20  # the window came back with it (21 requests, capped at 20)


def test_the_online_estimates_pairs_come_back(tmp_path):
    v = OnlineValidator(window=100, min_pairs=10, rounds=50)
    rng = random.Random(1)
    for i in range(60):
        s = rng.random()
        v.add(JudgedPair(100, s, 0.5, float(s > 0.3), float(s < 0.6), ("", "team-a", "team/b")[i % 3]))
    mem = RouteMemory(tmp_path / "m.json", "router-a", 0.3, validator=v)
    mem.write(mem.dump())
    fresh = OnlineValidator(window=100, min_pairs=10, rounds=50)
    assert RouteMemory(tmp_path / "m.json", "router-a", 0.3, validator=fresh).restore()
    assert fresh.pairs() == v.pairs() and fresh.latest.n == 60  # each pair with the key it counts under
    capped = OnlineValidator(window=100, min_pairs=10, rounds=50, key_share=0.1)  # each key's cap holds on restore
    assert RouteMemory(tmp_path / "m.json", "router-a", 0.3, validator=capped).restore()
    assert [p.key for p in capped.pairs()].count("team-a") == 10 and len(capped.pairs()) == 40
    # a file saved before pairs kept their key (five fields a pair) still restores, the pairs keyless
    import json
    data = json.loads((tmp_path / "m.json").read_text())
    data["pairs"] = [row[:5] for row in data["pairs"]]
    (tmp_path / "m.json").write_text(json.dumps(data))
    old = OnlineValidator(window=100, min_pairs=10, rounds=50)
    assert RouteMemory(tmp_path / "m.json", "router-a", 0.3, validator=old).restore()
    assert len(old.pairs()) == 60 and {p.key for p in old.pairs()} == {""}
    assert fresh.latest.apgr == pytest.approx(v.latest.apgr)
    other = OnlineValidator(window=100, min_pairs=10, rounds=50)
    assert not RouteMemory(tmp_path / "m.json", "router-b", 0.3, validator=other).restore()
    assert other.pairs() == []


def test_routes_whose_names_differ_only_in_unsafe_characters_keep_separate_files(tmp_path):
    """Route names are made safe for a file name; "a.b" and "a/b" both became "a_b", so two routes shared (and
    overwrote) one state file — the learned route's memory here, the reflective loop's state there."""
    from tierwise.policies.reflective import state_path_for

    names = ["a.b", "a/b", "a_b", "a b"]
    assert len({memory_path(tmp_path / "ledger.db", n) for n in names}) == len(names)
    assert len({state_path_for(tmp_path / "moves.jsonl", n) for n in names}) == len(names)
    assert memory_path(tmp_path / "ledger.db", "main").name == "ledger.db.main.learned.json"  # plain names unchanged
    assert all("/" not in memory_path(tmp_path / "l.db", n).name for n in names)
