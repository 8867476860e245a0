"""`tierwise eval --ledger` and `tierwise feedback` on a ledger with rows edited by hand or written by another tool
(a JSON column that is not JSON or not an object, a grade that is not a number), and `tierwise eval gsm8k` beside a
file named `gsm8k`. Before: `feedback` ended in an orjson traceback, `eval --ledger` on "unexpected character ..."
or "could not convert string to float" with no row named, and the benchmark was read in place of the file silently."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import orjson
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.ledger.store import Ledger


def _ledger_with_odd_rows(tmp_path: Path) -> Path:
    (tmp_path / "tierwise.yaml").write_text("ledger:\n  path: ./ledger.db\n")
    Ledger.open(str(tmp_path / "ledger.db")).close()
    rows = [(f"good{i}", float(i), "r", orjson.dumps({"outcome": {"strong": s, "weak": w}}).decode(), None,
             f"question {i}") for i, (s, w) in enumerate([(1, 0), (1, 1), (0, 0), (1, 0), (1, 0), (0, 1)])]
    rows += [("torn", 10.0, "r", '{"outcome": {"strong": 1', "[1, 2]", "cut off"),     # not JSON; not an object
             ("text", 11.0, "r", '{"outcome": {"strong": "x", "weak": null}}', '"str"', "a grade that is text"),
             ("nan", 12.0, "r", '{"outcome": {"strong": NaN, "weak": 0}}', None, "NaN is no JSON either"),
             ("inf", 13.0, "r", '{"outcome": {"strong": 1e999, "weak": 0}}', None, "a grade past a float")]
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.executemany("INSERT INTO requests (request_id, ts, route, extra, shadow, prompt, kind) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'chat')", rows)
    return tmp_path / "tierwise.yaml"


def test_eval_and_feedback_read_past_damaged_ledger_rows(tmp_path: Path) -> None:
    cfg = _ledger_with_odd_rows(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["eval", "--ledger", "-c", str(cfg), "--no-cv", "--json"])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    out = json.loads(res.stdout)
    assert out["n"] == 6  # the six well-formed judged rows, no more, no fewer
    assert "ledger row 'text'" in res.stderr and "row left out" in res.stderr

    for rid in ("torn", "text"):
        res = runner.invoke(main, ["feedback", rid, "poor", "-c", str(cfg)])
        assert res.exit_code == 0, res.output
        assert f"recorded poor for {rid}" in res.output
    led = Ledger.open(str(tmp_path / "ledger.db"))
    try:
        rec = led.get("torn")
        assert rec is not None and "feedback" in rec.extra  # the damaged text gave way to a readable value
    finally:
        led.close()


def test_a_file_named_like_a_benchmark_is_named_on_stderr(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("gsm8k").write_text('{"prompt": "mine", "strong": 1, "weak": 0}\n')
    res = CliRunner().invoke(main, ["eval", "gsm8k", "--no-cv", "-r", "linear", "--json"])
    assert res.exit_code == 0, res.output
    assert "`gsm8k` is read as the gsm8k benchmark, not the file ./gsm8k" in res.stderr
    assert "give `./gsm8k` to read the file" in res.stderr
    assert json.loads(res.stdout)["n"] > 1  # the benchmark, as before; `./gsm8k` still reads the one-row file


def test_reading_the_judged_rows_of_a_large_ledger_holds_one_row_at_a_time(tmp_path: Path) -> None:
    """`eval --ledger` kept every row of the ledger in memory to pick the judged ones (a 617 MB ledger: 733 MB
    resident); now the rows pass one at a time. 200 unjudged rows of 100 KB each (20 MB) and 3 judged ones."""
    import tracemalloc

    from tierwise.evaluation.loaders import load_ledger

    path = str(tmp_path / "ledger.db")
    Ledger.open(path).close()
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO requests (request_id, ts, route, prompt, kind) VALUES (?, ?, 'r', ?, 'chat')",
                       [(f"big{i}", float(i), "p" * 100_000 + str(i)) for i in range(200)])
        db.executemany("INSERT INTO requests (request_id, ts, route, extra, prompt, kind) VALUES (?, ?, 'r', ?, ?, "
                       "'chat')", [(f"j{i}", 1000.0 + i, orjson.dumps({"outcome": {"strong": 1, "weak": i % 2}}).decode(),
                                    f"judged {i}") for i in range(3)])
    led = Ledger.open(path)
    try:
        tracemalloc.start()
        ds = load_ledger(led)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        led.close()
    assert ds.prompts == ["judged 0", "judged 1", "judged 2"]
    assert peak < 5_000_000, peak  # a quarter of the 20 MB the unjudged rows hold together


def test_flywheel_export_leaves_out_evaluations_that_are_no_verdict(tmp_path: Path) -> None:
    """A judge's row edited by hand or written by another tool (`grade: "x"`, `accepted: "yes"`, an answer that is a
    list) was exported as an SFT example with the text "['l']" and a judge triple with verdict "x"."""
    (tmp_path / "tierwise.yaml").write_text("ledger:\n  path: ./ledger.db\n")
    Ledger.open(str(tmp_path / "ledger.db")).close()
    odd = {"evaluation": {"grade": "x", "accepted": "yes", "task_type": 5, "reason": {"a": 1}}, "local_answer": ["l"]}
    good = {"evaluation": {"grade": "good", "accepted": True, "task_type": "summary", "reason": "fine"},
            "local_answer": "a fine summary"}
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.executemany("INSERT INTO requests (request_id, ts, route, kind, prompt, extra) VALUES (?, ?, 'r', 'eval', "
                       "'summarise this', ?)", [("odd", 1.0, orjson.dumps(odd).decode()),
                                                 ("good", 2.0, orjson.dumps(good).decode())])
    res = CliRunner().invoke(main, ["flywheel", "export", "-c", str(tmp_path / "tierwise.yaml"), "--out",
                                    str(tmp_path / "out"), "--no-redact"])
    assert res.exit_code == 0, res.output
    sft = [json.loads(line) for line in (tmp_path / "out" / "sft.jsonl").read_text().splitlines()]
    judge = [json.loads(line) for line in (tmp_path / "out" / "judge.jsonl").read_text().splitlines()]
    assert [r["request_id"] for r in sft] == ["good"] and sft[0]["messages"][1]["content"] == "a fine summary"
    assert [(r["request_id"], r["verdict"]) for r in judge] == [("good", "good")]
