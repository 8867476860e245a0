"""Boundary moves and their records."""

from __future__ import annotations

import json

from tierwise.learning.boundary import Boundary, BoundarySettings, read_moves
from tierwise.learning.loop import LearningLoop, LoopSettings


def test_starts_on_frontier_and_moves_local_with_evidence(tmp_path) -> None:
    log = tmp_path / "boundary.jsonl"
    b = Boundary(BoundarySettings(quality_target=0.75, credible=0.9), log_path=log, route="chat")
    assert b.tier("summarisation") == "frontier"
    moves = []
    for i in range(40):
        m = b.observe("summarisation", 1.0 if i % 12 else 0.0, at=1_790_000_000.0 + i)
        if m:
            moves.append(m)
    assert b.tier("summarisation") == "local"
    assert len(moves) == 1 and moves[0].to == "local"
    m = moves[0]
    assert m.lower >= 0.75 and 0 < m.good <= m.judged
    assert "summarisation moved local on 2026-" in m.sentence()
    assert f"{m.good} good of {m.judged} judged" in m.sentence()
    rec = [json.loads(x) for x in log.read_text().splitlines()]
    assert rec[0]["task_type"] == "summarisation" and rec[0]["to"] == "local" and rec[0]["route"] == "chat"
    assert read_moves(log) == moves


def test_never_moves_on_poor_evidence() -> None:
    b = Boundary(BoundarySettings(quality_target=0.8))
    for i in range(300):
        assert b.observe("code", 1.0 if i % 3 else 0.0) is None
    assert b.tier("code") == "frontier"


def test_moves_back_after_drift() -> None:
    b = Boundary(BoundarySettings(quality_target=0.8, discount=0.99))
    for _ in range(200):
        b.observe("extraction", 1.0)
    assert b.tier("extraction") == "local"
    back = None
    for i in range(40):
        back = b.observe("extraction", 1.0 if i % 4 == 0 else 0.0) or back
        if back:
            break
    assert back is not None and back.to == "frontier"
    assert i < 12  # the short memory notices within its window, long before the discounted mean would
    went_local = b.history("extraction")[0]
    assert back.judged == 200 - went_local.judged + i + 1  # the evidence since the previous move
    assert b.tier("extraction") == "frontier"
    assert [m.to for m in b.history("extraction")] == ["local", "frontier"]


def test_tiers_restored_from_log(tmp_path) -> None:
    log = tmp_path / "b.jsonl"
    b = Boundary(BoundarySettings(quality_target=0.6), log_path=log, route="r")
    for _ in range(30):
        b.observe("chat", 1.0)
    assert b.tier("chat") == "local"
    again = Boundary(BoundarySettings(quality_target=0.6), log_path=log, route="r")
    assert again.tier("chat") == "local" and len(again.history()) == 1


def test_loop_shadows_frontier_requests_by_schedule() -> None:
    loop = LearningLoop("r", LoopSettings.model_validate({"boundary": {"quality_target": 0.7}}))
    plans = [loop.plan("qa", f"q{i}") for i in range(5)]
    assert all(p.tier == "frontier" and p.shadow and p.judge for p in plans)
    for i in range(60):
        loop.verdict("qa", 1.0, request_id=f"q{i}")
    p = loop.plan("qa", "after")
    assert p.tier == "local" and not p.shadow


def test_no_one_key_decides_a_move_but_a_key_alone_still_moves_its_type():
    """Quality attack: a client whose own prompts the local tier answers well (it chooses them) pushed a type
    local for every client while another client's verdicts on it were rejections; cost attack, the reverse. A
    move must now also hold without the key pushing hardest toward it and the one pushing hardest against it."""
    from tierwise.learning.boundary import Boundary, BoundarySettings

    settings = BoundarySettings(quality_target=0.8, credible=0.9)
    b = Boundary(settings)
    for i in range(60):  # the victim's answers are rejected; the attacker's (one in four) accepted
        b.observe("t", 1.0 if i % 4 == 0 else 0.0, key="attacker" if i % 4 == 0 else "victim")
    for _ in range(40):  # the attacker alone for a while
        b.observe("t", 1.0, key="attacker")
    assert b.tier("t") == "frontier", b.state("t")
    alone = Boundary(settings)
    for _ in range(20):
        alone.observe("t", 1.0, key="only")
    assert alone.tier("t") == "local"  # one key's evidence, no other: moves as it always did
    unkeyed = Boundary(settings)
    for _ in range(20):
        unkeyed.observe("t", 1.0)
    assert unkeyed.tier("t") == "local"
    team = Boundary(settings)
    for i in range(80):
        team.observe("t", 1.0, key=f"k{i % 3}")
    assert team.tier("t") == "local"  # keys that agree move it (on the evidence of the others than the first)
    restored = Boundary(settings)
    restored.load(b.dump())
    assert restored.state("t").by_key == b.state("t").by_key
