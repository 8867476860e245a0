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


class Boundary:
    """The privacy boundary's cleaning as a route's memory sees it: its protected classes and `clean_text`."""

    def __init__(self, *protected: str) -> None:
        self.protected = frozenset(protected)

    def clean_text(self, text: str) -> str:
        out = text
        if "EMAIL_ADDRESS" in self.protected:
            out = out.replace("ada@example.org", "<EMAIL_ADDRESS>")
        if "PHONE_NUMBER" in self.protected:
            out = out.replace("+46 70 123 45 67", "<PHONE_NUMBER>")
        return out


def test_prompts_cleaned_for_fewer_classes_are_cleaned_again_when_the_boundary_protects_more(tmp_path) -> None:
    """`prompts_cleaned: true` said the kept prompts passed *a* boundary, not which: a file cleaned while the config
    protected phone numbers only kept its e-mail addresses raw after the operator protected e-mail too — on disk
    and in the adaptation's fit, for as long as the pairs stayed (review27a). The file now says what it was cleaned
    for, and a boundary that protects more cleans the restored prompts again and rewrites the file."""
    path = tmp_path / "gw.db.main.learned.json"
    v, r, a = parts()
    m = RouteMemory(path, "fp", 0.3, refit=r, validator=v, adapter=a)
    m.clean_prompts(Boundary("PHONE_NUMBER"))  # the first config: phone numbers only
    for i in range(30):  # as the shadow task keeps them: cleaned by that boundary
        v.add(JudgedPair(40, (i % 10) / 10, 0.5, 1.0, float(i % 2), "k",
                         Boundary("PHONE_NUMBER").clean_text(f"Q{i}: mail ada@example.org, call +46 70 123 45 67")))
    m.write(m.dump())
    assert b"ada@example.org" in path.read_bytes() and b"+46 70" not in path.read_bytes()

    v2, r2, a2 = parts()
    m2 = RouteMemory(path, "fp", 0.3, refit=r2, validator=v2, adapter=a2)
    assert m2.restore()
    assert m2.clean_prompts(Boundary("PHONE_NUMBER", "EMAIL_ADDRESS")) == 30  # before: 0, the file "was cleaned"
    assert b"ada@example.org" not in path.read_bytes()
    assert all("<EMAIL_ADDRESS>" in p.prompt for p in v2.pairs())

    v3, r3, a3 = parts()  # the same boundary again (or one protecting less): nothing to clean, nothing rewritten
    m3 = RouteMemory(path, "fp", 0.3, refit=r3, validator=v3, adapter=a3)
    assert m3.restore() and m3.clean_prompts(Boundary("EMAIL_ADDRESS")) == 0


def test_a_restore_converts_no_more_of_a_window_than_the_route_keeps(tmp_path, monkeypatch) -> None:
    """A state file may hold millions of re-fit scores (64 MiB is the cap); the route keeps its window's newest. Each
    was converted and checked first: 32 MB of them took 400 MB and 7 s of CPU at start (review27a). Now only the
    newest `capacity` are."""
    from tierwise.routers import route_memory

    seen: list[int] = []
    real = route_memory._floats
    monkeypatch.setattr(route_memory, "_floats", lambda xs: (seen.append(len(xs)), real(xs))[1])
    r = ThresholdRefit(0.5, 0.3, window=100, min_scores=10)
    path = tmp_path / "gw.db.main.learned.json"
    path.write_text(json.dumps({"format": 1, "router": "fp", "target_share": 0.3, "saved_at": 0,
                                "refit": {"key_names": ["a"], "keys": [0] * 50_000, "scores": [0.25] * 50_000}}))
    assert RouteMemory(path, "fp", 0.3, refit=r).restore()
    assert r.held == 100  # the window restored, full
    assert max(seen) <= r.capacity, seen  # before: 50,000
