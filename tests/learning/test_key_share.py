"""One gateway key's share of a task type's evidence (`boundary.key_share`): kept across a restart, not escaped by
flooding the type until the other clients drop out of its recent offers, and never one key's alone for a move
while the type has other current clients (docs/learning.md, "One client's share of the evidence")."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, keyed_gateway, reflective_config, wait_for
from tierwise.learning.loop import LearningLoop, LoopSettings

KEYS = {"TW_KS_VICTIM": "victim-key-1", "TW_KS_ATTACKER": "attacker-key-2"}
TYPE = "summarisation"


def rejects_zztop(rec):
    """The frontier double: as judge it rejects the answers to the attacker's prompts (marked ZZTOP)."""
    text = json.dumps(rec.body)
    if "You are grading" in text:
        return Reply(text="Checked.\nVERDICT: " + ("poor" if "ZZTOP" in text else "good"))
    return Reply(text="frontier answer")


def victim_moves_it_local(route, victim) -> None:
    for i in range(40):
        victim.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier(TYPE) == "local" and i >= 11:
            break
    assert route.loop.boundary.tier(TYPE) == "local"


def flood(route, attacker, n: int) -> None:
    """`n` requests whose local answers the judge rejects, ten at a time (concurrent: their plans are made before
    any of their verdicts is in)."""
    def ask(i: int) -> None:
        attacker.chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"{SUMMARY} ZZTOP (#{i})"}])

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(ask, range(n)))
    assert wait_for(lambda: not route._background, timeout=60)


def config(openai_up, anthropic_up, **boundary):  # noqa: F811
    return reflective_config(openai_up, anthropic_up, schedule={"first_uses": 1000, "shadow_stop_after": 10_000},
                             boundary={"credible": 0.8, **boundary})


def test_a_restart_does_not_let_one_key_flood_a_type_again(gateway, openai_up, anthropic_up,  # noqa: F811
                                                           monkeypatch):
    """Who gave a type's evidence was kept in memory only: after a restart the first key to offer evidence was
    alone among the offers and every piece of its counted, so a flood right after a restart moved the type for
    every client. It is saved with the loop's state now (key names, as the ledger keeps them)."""
    cfg = config(openai_up, anthropic_up)
    g, route, (victim, _) = keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, cfg, rejects_zztop, KEYS)
    victim_moves_it_local(route, victim)
    g.stop()
    saved = json.loads(Path(route.state_path).read_text())

    g = gateway(cfg)  # the same ledger and state file
    route = g.gateway.resolve("main")
    assert route.loop.boundary.tier(TYPE) == "local"
    for i in range(30):  # one at a time, as in the test without a restart
        oai(g, api_key="attacker-key-2").chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"{SUMMARY} ZZTOP (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
    st = route.loop.boundary.state(TYPE)
    assert route.loop.boundary.tier(TYPE) == "local", st
    assert st.total_judged - st.total_good <= 2, st  # the attacker's pieces: its share, not its flood
    kept = saved["keys"][TYPE]
    assert set(kept["seen"]) == {"TW_KS_VICTIM"} and set(kept["evidence"]) == {"TW_KS_VICTIM"}
    assert "victim-key-1" not in json.dumps(saved)  # the keys' names (as the ledger keeps them), never the keys


def test_a_flood_does_not_push_the_other_clients_out_of_a_type(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                monkeypatch):
    """A type's clients were the keys among its last `key_window` offers of evidence: a key flooding the type
    pushed the others out of them (here after 8 offers) and was then alone, every piece of its counted, and moved
    the type for every client. A key that sent a request of the type within `key_idle_s` is a client now, and
    while it is, the flooding key's next piece waits for another client's, however many offers it makes (and
    however many at once)."""
    cfg = config(openai_up, anthropic_up, key_window=8)
    g, route, (victim, attacker) = keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, cfg,
                                                 rejects_zztop, KEYS)
    victim_moves_it_local(route, victim)
    flood(route, attacker, 40)
    st = route.loop.boundary.state(TYPE)
    assert route.loop.boundary.tier(TYPE) == "local", st
    assert st.total_judged - st.total_good <= 1, st
    r = victim.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (after)"}])
    assert r.choices[0].message.content == "local summary"


def clocked_loop(**boundary) -> tuple[LearningLoop, list[float]]:
    now = [1_000_000.0]
    loop = LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},
        "boundary": {"quality_target": 0.6, "credible": 0.8, **boundary}}))
    loop.keys.clock = lambda: now[0]
    return loop, now


def ask(loop: LearningLoop, key: str, i: int, accepted: float) -> bool:
    """One request of `key`; its verdict when the loop judges it. Whether it was judged."""
    rid = f"{key}-{i}"
    if loop.plan(TYPE, rid, key=key).judge:
        loop.verdict(TYPE, accepted, request_id=rid)
        return True
    return False


def test_a_client_gone_idle_no_longer_holds_the_others_back() -> None:
    """The other side: a key that stops sending requests of a type stops being its client after `key_idle_s`, and
    a key left alone decides by itself again (nothing stalls for good)."""
    loop, now = clocked_loop(key_idle_s=600)
    for i in range(30):
        ask(loop, "victim", i, 1.0)
    assert loop.boundary.tier(TYPE) == "local"
    judged = sum(ask(loop, "other", i, 0.0) for i in range(100))  # the victim asked a moment ago
    assert judged <= 1 and loop.boundary.tier(TYPE) == "local"
    now[0] += 601  # the victim has been idle for longer than key_idle_s
    for i in range(100, 200):
        ask(loop, "other", i, 0.0)
    assert loop.boundary.tier(TYPE) == "frontier"


def test_a_run_of_one_keys_rejections_is_not_a_drift_while_others_use_the_type() -> None:
    """The change-point test reads runs of verdicts; a run that is one key's alone (verdicts let through before the
    spacing rule could see them) does not move the type while another key is among its current clients: one key
    is never the sole evidence of a move. The posterior keeps those verdicts."""
    loop, now = clocked_loop(key_share=1.0)  # no per-key cap on offers: only the move rule is left
    for i in range(30):
        ask(loop, "victim", i, 1.0)
    assert loop.boundary.tier(TYPE) == "local"
    st = loop.boundary.state(TYPE)
    loop.keys.saw(TYPE, "other")
    for _ in range(8):
        loop.keys.note(TYPE, "other")  # as `verdict` notes a judged request of `other`
        assert loop.boundary.observe(TYPE, 0.0, hold=lambda why, run: loop.keys.decides_alone(TYPE, why, run),
                                     current=lambda: loop.keys.clients(TYPE) | {"other"}) is None
    assert st.tier == "local" and st.total_judged - st.total_good == 8
    loop.keys.last_seen[TYPE]["victim"] = now[0] - 10_000  # the victim left: the same run would now move it
    loop.keys.asked_by[TYPE].clear()
    moved = [loop.boundary.observe(TYPE, 0.0, hold=lambda why, run: loop.keys.decides_alone(TYPE, why, run),
                                   current=lambda: loop.keys.clients(TYPE) | {"other"}) for _ in range(8)]
    assert any(m is not None for m in moved) and st.tier == "frontier"
