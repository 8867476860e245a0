"""A data person's first `tierwise eval` on their own file (session 33, newuser33): a file with several
mistakes names every row to fix in one run, and `--save` says when the router it saved did not beat the
baseline in cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.evaluation.loaders import MAX_PROBLEMS_SHOWN, DataError, load_jsonl


def export(path: Path, rows: list[dict | str]) -> str:
    """A spreadsheet tool's export: a byte-order mark and CRLF line ends (both fine for the format)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return str(path)


def good(i: int) -> dict:
    return {"id": f"t{i}", "prompt": f"question {i} " + "word " * (i % 7), "strong": 1, "weak": i % 2}


def test_every_row_to_fix_is_named_in_one_run_not_one_mistake_per_run(tmp_path):
    rows: list[dict | str] = [good(i) for i in range(200)]
    rows[57] = {k: v for k, v in good(57).items() if k != "weak"}
    rows[120] = {**good(120), "strong": "1"}
    path = export(tmp_path / "mine.jsonl", rows)
    res = CliRunner().invoke(main, ["eval", path, "-r", "linear"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    # the first line reads as a single mistake's message did; the second mistake is on the next line
    assert lines[0] == f"tierwise eval: {path}:58: no `weak` (each row needs `prompt` (text) and the outcomes " \
                       "`strong` and `weak` (numbers))"
    assert lines[1] == f'{path}:121: `strong` is text ("1"): write the outcome as a JSON number, without quotes'
    assert lines[2] == "(2 rows to fix)"


def test_one_mistake_reads_as_before_and_many_are_capped(tmp_path):
    one = export(tmp_path / "one.jsonl", [good(0), {**good(1), "weak": True}])
    with pytest.raises(DataError) as e:
        load_jsonl(one)
    assert str(e.value) == f"{one}:2: `weak` is true: write the outcome as a number, 1 or 0"
    many = export(tmp_path / "many.jsonl", [{**good(i), "strong": "1"} for i in range(50)])
    with pytest.raises(DataError) as e:
        load_jsonl(many)
    lines = str(e.value).splitlines()
    assert len(lines) == MAX_PROBLEMS_SHOWN + 1
    assert lines[-1] == f"(and {50 - MAX_PROBLEMS_SHOWN} more; 50 rows to fix in all)"


VOCABULARY = "alpha beta gamma delta eps zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def by_length(path: Path) -> str:
    """The local model fails exactly the long prompts, whatever their words: prompt length routes it best."""
    import random

    r = random.Random(1)
    rows = []
    for i in range(120):
        n = r.randint(3, 30)
        rows.append({"id": f"q{i}", "prompt": " ".join(r.choice(VOCABULARY) for _ in range(n)), "strong": 1,
                     "weak": int(n <= 16)})
    return export(path, rows)


def by_word(path: Path) -> str:
    """The local model fails exactly the prompts holding one word, all prompts the same length."""
    import random

    r = random.Random(1)
    rows = []
    for i in range(120):
        words = [r.choice(VOCABULARY) for _ in range(8)]
        words[r.randrange(8)] = "integral" if i % 2 == 0 else "hello"
        rows.append({"id": f"q{i}", "prompt": " ".join(words), "strong": 1, "weak": i % 2})
    return export(path, rows)


def test_save_says_when_the_saved_router_lost_to_the_baseline_in_cross_validation(tmp_path):
    res = CliRunner().invoke(main, ["eval", by_length(tmp_path / "long.jsonl"), "-r", "linear", "--ci", "200",
                                    "--save", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    saved = res.output[res.output.index("saved router:"):]
    assert "- in cross-validation it was not shown better than prompt-length (lead -0." in saved
    assert "a `learned` route with it may route no better than prompt-length would" in saved
    as_json = CliRunner().invoke(main, ["eval", by_length(tmp_path / "long.jsonl"), "-r", "linear", "--ci", "200",
                                        "--save", str(tmp_path / "r"), "--json"])
    notes = json.loads(as_json.output)["saved_notes"]
    assert any("not shown better than prompt-length" in n for n in notes)


def test_save_says_nothing_more_when_the_saved_router_won(tmp_path):
    res = CliRunner().invoke(main, ["eval", by_word(tmp_path / "word.jsonl"), "-r", "linear", "--ci", "200",
                                    "--save", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "saved router:" in res.output and "not shown better" not in res.output


def test_a_router_not_shown_better_than_random_is_named_as_such():
    from types import SimpleNamespace

    from tierwise.commands.eval import _not_shown_better
    from tierwise.evaluation.metrics import Interval

    row = SimpleNamespace(apgr=0.52, apgr_ci=Interval(0.45, 0.58, 0.95), baseline="prompt-length", lead=0.1,
                          lead_ci=Interval(0.05, 0.15, 0.95))
    assert "not shown better than random (APGR 0.520, 95% 0.450 – 0.580)" in str(_not_shown_better(row))
    assert _not_shown_better(None) is None  # --no-cv: nothing was measured


def test_a_data_file_named_without_its_extension_is_suggested(tmp_path, monkeypatch):
    export(tmp_path / "mine.jsonl", [good(i) for i in range(10)])
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["eval", "mine", "-r", "linear"])
    assert res.exit_code == 2
    assert "no file or benchmark 'mine'; did you mean `mine.jsonl`? (a file's path with its extension)" in res.output


def test_eval_without_a_router_says_only_the_baselines_are_shown(tmp_path):
    res = CliRunner().invoke(main, ["eval", export(tmp_path / "mine.jsonl", [good(i) for i in range(40)]),
                                    "--ci", "100"])
    assert res.exit_code == 0, res.output
    assert "Note: only the baselines are shown: no router was given; add one or more to train and compare on this " \
           "data (`-r linear -r stack-lsa`, or a saved router's .json)." in res.output
    with_router = CliRunner().invoke(main, ["eval", str(tmp_path / "mine.jsonl"), "--ci", "100", "-r", "linear",
                                            "-k", "2"])
    assert with_router.exit_code == 0 and "only the baselines" not in with_router.output


def test_a_spreadsheet_export_names_every_bad_cell_too(tmp_path):
    path = tmp_path / "mine.csv"
    lines = ["id,prompt,strong,weak"] + [f"t{i},question {i},1,{i % 2}" for i in range(30)]
    lines[11] = "t10,question 10,yes,0"
    lines[21] = "t20,question 20,1,"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    with pytest.raises(DataError) as e:
        load_jsonl(path)
    assert str(e.value).splitlines() == [
        f"{path}:12: `strong` is 'yes': write the outcome as a number (1/0 correctness or a grade)",
        f"{path}:22: no `weak` (each row needs `prompt` (text) and the outcomes `strong` and `weak` (numbers))",
        "(2 rows to fix)"]


def test_a_saved_routers_shift_figures_say_what_they_mean(tmp_path):
    rows = [good(i) for i in range(40)]
    export(tmp_path / "train.jsonl", rows)
    saved = CliRunner().invoke(main, ["eval", str(tmp_path / "train.jsonl"), "-r", "linear", "--no-cv", "--save",
                                      str(tmp_path / "r")])
    assert saved.exit_code == 0, saved.output
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "train.jsonl"), "-r", str(tmp_path / "r.json"),
                                    "--ci", "100"])
    assert res.exit_code == 0, res.output
    assert "- calibrated for 30% strong calls (`--target-share`); at that threshold" in res.output
    assert ("- far_share_lsa: 0.025 (shift, lsa space: the share of these queries farther from its training prompts "
            "than 95% of those are from each other; about 0.05 for data like its own, a warning past 0.25)") \
        in res.output
    assert "(how far these queries lie from its training prompts, as a percentile of the training prompts' own " \
           "distances: about 0.5 for data like its own, 1.0 for data unlike it)" in res.output
    assert "- in_training: 40 (queries that are among its training prompts)" in res.output
    as_json = json.loads(CliRunner().invoke(main, ["eval", str(tmp_path / "train.jsonl"), "-r",
                                                   str(tmp_path / "r.json"), "--ci", "100", "--json"]).output)
    assert as_json["saved_routers"][0]["far_share_lsa"] == 0.025  # --json keeps the bare figures


def test_lines_that_are_not_json_are_named_with_the_other_rows_in_file_order(tmp_path):
    rows: list[dict | str] = [good(i) for i in range(30)]
    rows[3] = json.dumps(good(3))[:25]  # a line cut short
    rows[9] = {**good(9), "strong": "1"}
    rows[20] = json.dumps(good(20)).replace('"prompt"', "prompt")
    path = export(tmp_path / "mine.jsonl", rows)
    with pytest.raises(DataError) as e:
        load_jsonl(path)
    assert [line.split(": ", 1)[0] for line in str(e.value).splitlines()] == [
        f"{path}:4", f"{path}:10", f"{path}:21", "(3 rows to fix)"]
    assert "not valid JSON (Unterminated string" in str(e.value)


def test_a_first_line_that_is_not_json_still_stops_at_once(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("prompt,strong,weak\nhi,1,0\nho,1,1\n")  # a CSV under a .jsonl name
    with pytest.raises(DataError) as e:
        load_jsonl(path)
    assert str(e.value).count("\n") == 0 and "the file looks like CSV or TSV" in str(e.value)
