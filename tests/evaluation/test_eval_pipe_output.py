"""`tierwise eval` in a pipe or a CI log (stderr not a terminal: click's runner is one). Before (session 25's
leftovers): the progress lines were for terminals only, so a CI log heard nothing for the minutes a large file's
cross-validation takes. Now one plain line a stage (no line per fold) and a last line when done; with --json
stderr stays empty (stdout is the JSON, and `2>&1` must stay parseable)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tierwise.cli import main


def _data(path: Path) -> str:
    rows = [{"id": str(i), "prompt": (f"prove theorem {i} about primes" if i % 2 else f"capital of country {i}"),
             "strong": 1, "weak": (i * 7 % 10 < 3) if i % 2 else (i * 7 % 10 < 9)} for i in range(120)]
    path.write_text("".join(json.dumps({**r, "weak": int(r["weak"])}) + "\n" for r in rows))
    return str(path)


def test_a_pipe_hears_each_stage_once_and_the_end(tmp_path: Path) -> None:
    data = _data(tmp_path / "d.jsonl")
    res = CliRunner().invoke(main, ["eval", data, "-r", "linear", "--ci", "0", "--save", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    err = res.stderr
    assert "linear: training 5 folds on 120 queries" in err, err
    assert "fold 2 of 5" not in err and "…" not in err, err  # no per-fold lines, nothing drawn for a terminal
    assert "linear: training on all 120 queries to save it" in err, err
    assert "done: 120 queries, best linear (5-fold CV) APGR" in err.splitlines()[-1], err
    assert "| linear (5-fold CV) |" in res.stdout and "saved router:" in res.stdout  # the summary, as before


def test_json_output_keeps_stderr_empty(tmp_path: Path) -> None:
    data = _data(tmp_path / "d.jsonl")
    res = CliRunner().invoke(main, ["eval", data, "-r", "linear", "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert json.loads(res.output)["n"] == 120  # stdout and stderr as one stream: still the JSON alone
