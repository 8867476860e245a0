"""The boundary's record of moves is bounded (loopsec, session 31): a type flapping between the tiers (a drift that
comes and goes, or two keys rating it each their way: about one move per 33 verdicts when every verdict pushes it
back) adds a move for as long as the gateway runs. Before, every move stayed in memory and the log was read whole at
each start and by `tierwise boundary`."""

from __future__ import annotations

import json
from dataclasses import asdict

from tierwise.learning import boundary as boundary_mod
from tierwise.learning.boundary import MAX_MOVES, Boundary, BoundarySettings, Move, read_moves
from tierwise.learning.loop import LearningLoop, LoopSettings


def _move(i: int, task_type: str = "summarisation") -> Move:
    return Move(task_type, "local" if i % 2 else "frontier", 1_790_000_000.0 + i, 30, 33, 0.81, 0.9, 0.8,
                f"req_{i}", "main", "evidence")


def test_a_long_move_log_keeps_its_latest_moves_and_the_tiers_they_leave(tmp_path):
    log = tmp_path / "ledger.db.boundary.jsonl"
    n = MAX_MOVES * 3
    with log.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(_move(0, "extraction"))) + "\n")  # a type that moved once, long ago
        for i in range(1, n):
            fh.write(json.dumps(asdict(_move(i))) + "\n")
    b = Boundary(BoundarySettings(), log_path=log, route="main")
    assert len(b.moves) == MAX_MOVES  # n before
    assert b.moves[-1].request_id == f"req_{n - 1}"
    assert b.tier("summarisation") == "local"  # the last move's
    assert len(read_moves(log)) == MAX_MOVES


def test_the_move_log_passes_to_an_older_file_and_memory_keeps_the_latest(tmp_path, monkeypatch):
    monkeypatch.setattr(boundary_mod, "MAX_LOG_BYTES", 4_000)
    monkeypatch.setattr(boundary_mod, "MAX_MOVES", 20)
    log = tmp_path / "b.jsonl"
    loop = LearningLoop("main", LoopSettings(), log_path=str(log))
    b = loop.boundary
    moves = 0
    while moves < 200:  # every verdict pushes the type the other way
        if b.observe("chat", 0.0 if b.tier("chat") == "local" else 1.0) is not None:
            moves += 1
    assert len(b.moves) == 20 and "chat" in loop._moved_types()
    older = log.with_name(log.name + ".1")
    assert older.exists() and log.stat().st_size <= 4_000 + 400 and older.stat().st_size <= 4_000 + 400
    latest = read_moves(log)
    assert len(latest) == 20 and latest[-1] == b.moves[-1]
