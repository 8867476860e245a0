"""Rows whose `prompt` is empty or only whitespace, in data a team recorded itself (session 37, newuser37).

Before, `tierwise eval tickets.jsonl -r linear` trained and scored 80 rows of which three had `"prompt": ""`,
`"   "` and `"\\n"`, without a word: a router was fitted to outcomes of nothing (and the rows of one blank prompt all
counted as one question's text). Now each such row is an error naming its line, with the other rows' mistakes, in
JSONL and in CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.evaluation.loaders import DataError, load_jsonl


def rows(n: int = 12) -> list[dict]:
    return [{"prompt": f"Customer ticket {i}: refund question", "strong": 8, "weak": 3 + i % 5} for i in range(n)]


def test_empty_and_blank_prompts_are_errors_naming_their_lines(tmp_path: Path) -> None:
    data = rows()
    data[2]["prompt"], data[5]["prompt"], data[9]["prompt"] = "", "   ", "\n"
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_jsonl(path)
    text = str(e.value)
    for line in (3, 6, 10):
        assert f"tickets.jsonl:{line}: `prompt` is empty" in text, text
    res = CliRunner().invoke(main, ["eval", str(path), "-r", "linear", "--ci", "0"])
    assert res.exit_code != 0 and "`prompt` is empty" in res.output, res.output
    assert "Traceback" not in res.output


def test_an_empty_prompt_cell_in_a_csv_is_an_error_too(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("prompt,strong,weak\nfirst question,1,0\n,1,0\n\"  \",0,1\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_jsonl(path)
    text = str(e.value)
    assert "tickets.csv:3: no `prompt`" in text, text  # an empty cell is the field left out (already refused)
    assert "tickets.csv:4: `prompt` is empty" in text, text  # a blank one was read as a prompt


def test_outcomes_named_by_the_tiers_say_which_field_to_rename(tmp_path: Path) -> None:
    # newuser37: tierwise calls the tiers `frontier` and `local` (boundary, feedback, a reflective route's keys); a
    # team that wrote its outcomes under those names got "no `strong` and no `weak`" and no word on its own fields.
    path = tmp_path / "tiers.jsonl"
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "frontier": r["strong"], "local": r["weak"]}) + "\n"
                            for r in rows()), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_jsonl(path)
    assert "rename this row's `frontier` as `strong` and `local` as `weak`" in str(e.value), str(e.value)
