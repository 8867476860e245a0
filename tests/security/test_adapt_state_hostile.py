"""A learned route's state file written by someone else (review27a): whatever it holds, a restart refuses it with a
warning and starts fresh, never stops the gateway. Numbers JSON holds but a float does not (a 400-digit integer),
nesting deeper than the decoder's stack, and a FIFO in the file's place each stopped (or hung) the route's build
before: OverflowError and RecursionError passed the restore's handler, and reading a FIFO waits for a writer."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tierwise.evaluation.online import JudgedPair, OnlineValidator
from tierwise.routers.adapt import LiveAdapter
from tierwise.routers.refit import ThresholdRefit
from tierwise.routers.route_memory import RouteMemory

HUGE = "9" * 400  # an integer JSON holds and Python parses (under its 4,300-digit cap), past any float


def parts() -> tuple[OnlineValidator, ThresholdRefit, LiveAdapter]:
    v = OnlineValidator(window=200, min_pairs=5, rounds=20, every=10_000, prompts_kept=100)
    return v, ThresholdRefit(0.5, 0.3, window=100, min_scores=10), LiveAdapter(v, 0.3, min_pairs=20, window=100)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, str]:
    v, r, a = parts()
    for i in range(60):
        v.add(JudgedPair(30 + i, (i % 10) / 10, 0.5, 1.0, float(i % 2), f"k{i % 3}", f"question {i} on topic {i % 7}"))
    for i in range(50):
        r.add((i % 9) / 9, "k")
    assert a.refit()
    path = tmp_path / "gw.db.main.learned.json"
    m = RouteMemory(path, "fp", 0.3, refit=r, validator=v, adapter=a)
    m.write(m.dump())
    return path, path.read_text()


def restore(path: Path) -> tuple[bool, OnlineValidator]:
    v, r, a = parts()
    return RouteMemory(path, "fp", 0.3, refit=r, validator=v, adapter=a).restore(), v


def test_the_saved_state_restores(saved) -> None:
    path, _ = saved
    ok, v = restore(path)
    assert ok and len(v.pairs()) == 60


@pytest.mark.parametrize("where", ["refit scores", "adapt scores", "pair score", "pair prompt length"])
def test_a_number_past_any_float_is_refused(saved, where, caplog) -> None:
    path, text = saved
    data = json.loads(text)
    marker = -123456789
    if where == "refit scores":
        data["refit"]["scores"][0] = marker
    elif where == "adapt scores":
        data["adapt"]["scores"][0] = marker
    elif where == "pair score":
        data["pairs"][0][1] = marker
    else:
        data["pairs"][0][0] = 123456789
        marker = 123456789
    path.write_text(json.dumps(data).replace(str(marker), HUGE if marker > 0 else "-" + HUGE, 1))
    with caplog.at_level(logging.WARNING, "tierwise"):
        ok, v = restore(path)  # before: OverflowError out of the route's build (the gateway did not start)
    assert not ok and v.pairs() == []
    assert "not restored" in caplog.text


def test_nesting_deeper_than_the_decoder_s_stack_is_refused(saved, caplog) -> None:
    path, _ = saved
    path.write_text('{"format": ' + "[" * 200_000 + "]" * 200_000 + "}")  # 400 kB, far under the size cap
    with caplog.at_level(logging.WARNING, "tierwise"):
        ok, _ = restore(path)  # before: RecursionError out of the route's build
    assert not ok and "not restored" in caplog.text


def test_a_fifo_in_the_file_s_place_is_refused_not_waited_on(saved, caplog) -> None:
    path, _ = saved
    path.unlink()
    os.mkfifo(path)
    with caplog.at_level(logging.WARNING, "tierwise"):
        ok, _ = restore(path)  # before: blocked opening it for reading, waiting for a writer that never came
    assert not ok and "not restored" in caplog.text
