"""A spreadsheet's "CSV" export where the decimal mark is a comma: semicolons between the cells, `7,5` for a grade
(Excel and LibreOffice in most of Europe). newuser37: `tierwise eval tickets.csv` said "the header row names
id;prompt;strong;weak;subject; a CSV of outcomes needs a header with `prompt`, `strong` and `weak` columns",
naming the columns it said were missing. Now it is read as the comma-separated file with the same cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.evaluation.loaders import DataError, load_jsonl

ROWS = [("q1", "How do I reset my password; the link expired?", "7,5", "3"),
        ("q2", "Refund for order 12", "9", "8,25"),
        ("q3", "Explain clause 4.2", "6", "1")]


def test_a_semicolon_separated_export_with_decimal_commas_reads_as_the_comma_one(tmp_path: Path) -> None:
    eu = tmp_path / "tickets.csv"
    eu.write_text("id;prompt;strong;weak\n" + "".join(f'{i};"{p}";{s};{w}\n' for i, p, s, w in ROWS),
                  encoding="utf-8")
    plain = tmp_path / "plain.csv"
    plain.write_text("id,prompt,strong,weak\n" + "".join(
        f'{i},"{p}",{s.replace(",", ".")},{w.replace(",", ".")}\n' for i, p, s, w in ROWS), encoding="utf-8")
    a, b = load_jsonl(eu), load_jsonl(plain)
    assert a.prompts == b.prompts and a.prompts[0] == ROWS[0][1]  # the quoted `;` stays in the prompt
    assert a.strong.tolist() == b.strong.tolist() == [7.5, 9.0, 6.0]
    assert a.weak.tolist() == [3.0, 8.25, 1.0] and a.groups == b.groups == ["q1", "q2", "q3"]


def test_a_comma_separated_file_keeps_refusing_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('prompt,strong,weak\n"a question","7,5",1\n', encoding="utf-8")
    with pytest.raises(DataError, match="write the outcome as a number"):
        load_jsonl(path)
