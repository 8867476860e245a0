"""A user's own JSONL as editors and spreadsheets write it: `tierwise eval` reads a UTF-8 byte-order mark,
CRLF line ends and blank lines, and an error names the file's own line and the field, and says how to fix it
(before: a BOM was "not valid JSON", a line after blank lines was misnumbered, "1" as a label got the same
sentence as a missing field, and Latin-1 text was a bare codec message without a line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.evaluation.loaders import DataError, load_jsonl

ROWS = [{"id": f"q{i}", "prompt": f"Wie viel ist {i} plus {i * 3}?", "strong": 1, "weak": i % 2} for i in range(12)]


def _text(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_bom_crlf_and_blank_lines_read_as_the_plain_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text(_text(ROWS), encoding="utf-8")
    odd = tmp_path / "odd.jsonl"
    odd.write_bytes(b"\xef\xbb\xbf" + ("\r\n\r\n" + _text(ROWS).replace("\n", "\r\n\r\n")).encode("utf-8"))
    a, b = load_jsonl(plain), load_jsonl(odd)
    assert a.prompts == b.prompts and a.groups == b.groups
    assert list(a.strong) == list(b.strong) and list(a.weak) == list(b.weak)
    res = CliRunner().invoke(main, ["eval", str(odd), "-r", "linear", "-k", "2", "--ci", "0"])
    assert res.exit_code == 0, res.output


def _error(tmp_path: Path, data: bytes) -> str:
    p = tmp_path / "mine.jsonl"
    p.write_bytes(data)
    with pytest.raises(DataError) as e:
        load_jsonl(p)
    res = CliRunner().invoke(main, ["eval", str(p), "-r", "linear"])
    assert res.exit_code == 2 and "Traceback" not in res.output and str(e.value) in res.output, res.output
    return str(e.value).replace(str(p), "mine.jsonl")


def test_errors_name_the_line_of_the_file_and_the_field(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in ROWS]
    lines[4] = json.dumps({"id": "q4", "prompt": "x", "strong": 1})
    # two blank lines first: the bad row is line 7 of the file, not the 5th row
    assert _error(tmp_path, ("\n\n" + "\n".join(lines) + "\n").encode()).startswith("mine.jsonl:7: no `weak`")
    lines[4] = json.dumps({"id": "q4", "prompt": "x", "strong": "1", "weak": "0"})
    assert _error(tmp_path, "\n".join(lines).encode()) == (
        'mine.jsonl:5: `strong` is text ("1"): write the outcome as a JSON number, without quotes')
    lines[4] = json.dumps({"id": "q4", "prompt": "x", "strong": True, "weak": False})
    assert _error(tmp_path, "\n".join(lines).encode()) == (
        "mine.jsonl:5: `strong` is true: write the outcome as a number, 1 or 0")
    lines[4] = json.dumps({"id": "q4", "strong": 1, "weak": 0})
    assert _error(tmp_path, "\n".join(lines).encode()).startswith("mine.jsonl:5: no `prompt`")


def test_other_encodings_and_shapes_say_what_to_do(tmp_path: Path) -> None:
    latin1 = _text(ROWS[:3]).replace("Wie viel", "¿Cuánto").encode("latin-1")
    assert _error(tmp_path, latin1) == "mine.jsonl:1: not UTF-8 (byte 0xbf at column 25); save the file as UTF-8"
    assert _error(tmp_path, _text(ROWS).encode("utf-16")) == (
        "mine.jsonl: UTF-16 text; save the file as UTF-8 (one JSON object a line)")
    assert _error(tmp_path, json.dumps(ROWS).encode()).startswith(
        "mine.jsonl:1: a JSON array; the format is one JSON object a line (JSONL)")
    assert _error(tmp_path, b"\n\r\n").startswith("mine.jsonl: no rows (one JSON object a line")


def test_values_the_json_reader_accepts_but_numpy_and_utf_8_cannot_take_are_named_by_line(tmp_path: Path) -> None:
    # Before (session 24): an outcome written as a 300-digit integer was a traceback (OverflowError), one of
    # 1e308 an "Input y contains infinity" from scikit-learn without a file or line, and a prompt with an
    # unpaired surrogate escape ("\ud800") the bare codec message "'utf-8' codec can't encode character".
    lines = [json.dumps(r) for r in ROWS]

    def with_row(row: str) -> bytes:
        return "\n".join([*lines[:4], row, *lines[5:]]).encode()

    assert _error(tmp_path, with_row('{"prompt": "x", "strong": 1' + "0" * 320 + ', "weak": 0}')).startswith(
        "mine.jsonl:5: `strong` is 1000000000000000000000… (321 digits): outcomes are 1/0 correctness or a grade")
    assert _error(tmp_path, with_row('{"prompt": "x", "strong": 1e308, "weak": -1e308}')).startswith(
        "mine.jsonl:5: `strong` is 1e+308: outcomes are 1/0 correctness or a grade")
    assert _error(tmp_path, with_row('{"prompt": "x", "strong": 1' + "0" * 5000 + ', "weak": 0}')).startswith(
        "mine.jsonl:5: not valid JSON (Exceeds the limit (4300 digits)")
    assert _error(tmp_path, with_row('{"prompt": "x\\ud800y", "strong": 1, "weak": 0}')) == (
        "mine.jsonl:5: `prompt` holds an unpaired UTF-16 surrogate escape (\\ud800), which is not text: "
        "fix the exporter that wrote it")
    assert _error(tmp_path, with_row('{"prompt": "x", "strong": 1, "weak": 0, "weak_response": "a\\udfffb"}')
                  ).startswith("mine.jsonl:5: `weak_response` holds an unpaired UTF-16 surrogate escape (\\udfff)")
    # a line cut short: the reader's message says what is wrong and where, not "Invalid control character at"
    assert _error(tmp_path, with_row('{"prompt": "x", "strong": 1, "we')) == (
        "mine.jsonl:5: not valid JSON (Unterminated string starting at column 30)")


def test_null_in_an_optional_field_is_the_field_left_out(tmp_path: Path) -> None:
    # Before (session 24): `"id": null` (a spreadsheet export's empty cell) became the id "None" on every such row:
    # all of them one question to cross-validation ("has 1 questions, fewer than k=5 folds"), and
    # `"subject": null` the subject "None".
    p = tmp_path / "nulls.jsonl"
    p.write_text(_text([{**r, "id": None, "subject": None, "weak_response": None} for r in ROWS]))
    ds = load_jsonl(p)
    assert ds.groups == [str(n) for n in range(1, len(ROWS) + 1)] and ds.subjects == [""] * len(ROWS)
    assert ds.weak_responses is None
    res = CliRunner().invoke(main, ["eval", str(p), "-r", "linear", "-k", "3", "--ci", "0"])
    assert res.exit_code == 0, res.output


def test_a_csv_or_tsv_with_a_header_reads_as_the_jsonl_would(tmp_path: Path) -> None:
    # Before (session 24): a spreadsheet export (.csv) was refused ("looks like CSV or TSV: this reads JSON Lines")
    # with no way to convert it that kept the outcomes numbers.
    import csv

    plain = tmp_path / "plain.jsonl"
    plain.write_text(_text(ROWS), encoding="utf-8")
    rows = [{**r, "prompt": r["prompt"] + ', "quoted", and\na second line' if i == 3 else r["prompt"], "notes": "x"}
            for i, r in enumerate(ROWS)]
    sheet = tmp_path / "sheet.csv"
    with open(sheet, "w", encoding="utf-8-sig", newline="") as f:  # Excel's BOM, CRLF line ends
        w = csv.DictWriter(f, ["id", "prompt", "strong", "weak", "notes", "subject"])
        w.writeheader()
        w.writerows([{**r, "subject": ""} for r in rows])
    a, b = load_jsonl(plain), load_jsonl(sheet)
    assert b.groups == a.groups and list(b.strong) == list(a.strong) and list(b.weak) == list(a.weak)
    assert b.prompts[3].endswith("and\na second line") and b.subjects == [""] * len(ROWS)
    tsv = tmp_path / "sheet.tsv"
    tsv.write_text("prompt\tstrong\tweak\n" + "".join(f"{r['prompt']}\t{r['strong']}\t{r['weak']}\n" for r in ROWS))
    assert list(load_jsonl(tsv).weak) == list(a.weak)
    res = CliRunner().invoke(main, ["eval", str(sheet), "-r", "linear", "-k", "2", "--ci", "0"])
    assert res.exit_code == 0, res.output
    # errors name the line where the record starts (record 5 starts on line 7: record 4's prompt spans two lines)
    bad = sheet.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    bad[6] = bad[6].replace(",1,", ",yes,", 1)
    sheet.write_text("".join(bad), encoding="utf-8")
    with pytest.raises(DataError, match=r"sheet.csv:7: `strong` is 'yes': write the outcome as a number"):
        load_jsonl(sheet)


def test_a_json_array_of_rows_reads_as_the_jsonl_would(tmp_path: Path) -> None:
    # Before (session 24): `data.json` holding one array (pandas' to_json(orient="records"), a pretty-printed
    # export) was refused: "a JSON array; the format is one JSON object a line".
    plain = tmp_path / "plain.jsonl"
    plain.write_text(_text(ROWS), encoding="utf-8")
    a = load_jsonl(plain)
    for name, text in (("one_line.json", json.dumps(ROWS)), ("pretty.json", json.dumps(ROWS, indent=2))):
        p = tmp_path / name
        p.write_bytes(b"\xef\xbb\xbf" + text.encode())
        b = load_jsonl(p)
        assert b.prompts == a.prompts and b.groups == a.groups and list(b.weak) == list(a.weak)
    no_ids = tmp_path / "no_ids.json"
    no_ids.write_text(json.dumps([{k: v for k, v in r.items() if k != "id"} for r in ROWS]))
    assert load_jsonl(no_ids).groups == [str(n) for n in range(1, len(ROWS) + 1)]  # one question per item
    res = CliRunner().invoke(main, ["eval", str(no_ids), "-r", "linear", "-k", "3", "--ci", "0"])
    assert res.exit_code == 0, res.output
    bad = [dict(r) for r in ROWS]
    bad[7]["strong"] = "1"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad, indent=1))
    with pytest.raises(DataError, match=r'bad\.json:44 \(item 8\): `strong` is text \("1"\)'):
        load_jsonl(p)
    p.write_text(json.dumps(ROWS)[:-30])
    with pytest.raises(DataError, match=r"bad\.json:1: not valid JSON"):
        load_jsonl(p)


def _csv_error(tmp_path: Path, text: str) -> str:
    p = tmp_path / "sheet.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_jsonl(p)
    res = CliRunner().invoke(main, ["eval", str(p), "-r", "linear", "--no-cv"])
    assert res.exit_code == 2 and "Traceback" not in res.output and str(e.value) in res.output, res.output
    return str(e.value).replace(str(p), "sheet.csv")


def test_a_csv_quote_never_closed_is_an_error_not_the_rest_of_the_file_in_one_prompt(tmp_path: Path) -> None:
    """review24b: a prompt whose opening quote is never closed, in the last column, took every line after it
    into that prompt: 4 records read as 1, without a word (the outcomes on the rows swallowed were lost)."""
    msg = _csv_error(tmp_path, 'strong,weak,prompt\n1,0,"q1 never closed\n1,0,q2\n1,1,q3\n0,1,q4\n')
    assert msg.startswith("sheet.csv:2: ") and "quote" in msg, msg
    msg = _csv_error(tmp_path, 'prompt,strong,weak\nq1,1,0\n"a "b" c,1,0\n')  # text after a closing quote
    assert msg.startswith("sheet.csv:3: ") and "quote" in msg, msg


def test_a_csv_header_naming_a_field_twice_is_an_error(tmp_path: Path) -> None:
    """review24b: `prompt,strong,weak,prompt` read the last `prompt` column (a note) as every row's prompt."""
    msg = _csv_error(tmp_path, "prompt,strong,weak,prompt\nq1,1,0,a note\nq2,0,1,a note\n")
    assert msg.startswith("sheet.csv:1: ") and "`prompt` twice" in msg, msg


def test_a_csv_of_only_a_header_says_so(tmp_path: Path) -> None:
    """review24b: a header with no records below it was told the JSONL format ("one JSON object a line")."""
    msg = _csv_error(tmp_path, "prompt,strong,weak\r\n\r\n")
    assert msg.startswith("sheet.csv: ") and "header" in msg and "JSON object" not in msg, msg


def test_a_json_arrays_item_lines_are_counted_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """review24b: each item's line was counted from the start of the file, so the work grew with the square of
    the array: a 16 MB pretty-printed array of 40,000 rows took 280 s to read (the docs allow 512 MiB)."""
    from tierwise.evaluation import json_array

    scanned: list[int] = []
    real = json_array._newlines

    def counting(text: str, start: int, end: int) -> int:
        scanned.append(end - start)
        return real(text, start, end)

    monkeypatch.setattr(json_array, "_newlines", counting)
    rows = [{"id": f"r{i}", "prompt": f"prompt {i}", "strong": 1, "weak": i % 2} for i in range(2_000)]
    p = tmp_path / "rows.json"
    p.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    data = load_jsonl(p)
    assert data.groups == [f"r{i}" for i in range(2_000)]
    assert 0 < sum(scanned) <= len(p.read_text(encoding="utf-8")), f"{sum(scanned):,} characters scanned"
    rows[1_500]["strong"] = "1"  # and an error still names the item's own line
    p.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    line = p.read_text(encoding="utf-8").splitlines().index('    "id": "r1500",')  # 0-based: the `{` line above
    with pytest.raises(DataError, match=rf"rows.json:{line} \(item 1501\): `strong` is text"):
        load_jsonl(p)


def test_a_json_array_nested_too_deep_is_named_by_its_file(tmp_path: Path) -> None:
    """review24b: `[[[[…` 200,000 deep answered "maximum recursion depth exceeded while decoding a JSON array from
    a unicode string", naming no file."""
    p = tmp_path / "deep.json"
    p.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(DataError, match=r"deep.json: "):
        load_jsonl(p)


def test_a_jsonl_line_nested_too_deep_is_named_by_its_line(tmp_path: Path) -> None:
    """review24b: a line of `[[[[…` 200,000 deep answered Python's "maximum recursion depth exceeded", naming no
    file or line."""
    assert _error(tmp_path, (_text(ROWS[:1]) + "[" * 200_000 + "]" * 200_000 + "\n").encode()).startswith(
        "mine.jsonl:2: ")


def test_a_chat_as_the_prompt_says_how_to_write_it(tmp_path: Path) -> None:
    """review24b: a multi-turn chat (`"prompt": [{"role": "user", "content": ...}, ...]`, how chat logs are
    exported) was told only "`prompt` must be text"; the router reads one text, so say which."""
    row = {"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "and now?"}], "strong": 9, "weak": 4}
    msg = _error(tmp_path, (json.dumps(row) + "\n").encode())
    assert msg.startswith("mine.jsonl:1: `prompt`") and "messages" in msg and "last user" in msg, msg


def test_a_prompt_under_another_data_sets_name_is_named_with_the_fix(tmp_path: Path) -> None:
    # Hugging Face exports call the prompt `question` (MMLU-Pro), `instruction` (Alpaca), `input`, ...: before, the
    # error said only "no `prompt`", and a user looking at a file full of questions had to guess what it wanted.
    rows = [{"question": r["prompt"], "strong": r["strong"], "weak": r["weak"]} for r in ROWS]
    msg = _error(tmp_path, _text(rows).encode())
    assert msg.startswith("mine.jsonl:1: no `prompt`") and "`question` is read only as `prompt`: rename" in msg
    rows[0] = {"instruction": "Name a prime", "strong": 1, "weak": 1}
    assert "`instruction` is read only as `prompt`" in _error(tmp_path, _text(rows).encode())
    # (a CSV's header error already lists the columns it has beside the ones it needs)


def test_an_empty_id_is_the_field_left_out_and_a_shared_one_is_named(tmp_path: Path) -> None:
    # Before (session 36): `"id": ""` (a CSV-to-JSON tool's empty cell; the CSV reader already read it as absent) made
    # every such row the one question "": "has 1 questions, fewer than k=5 folds" on 12 rows, with no word why.
    p = tmp_path / "blank.jsonl"
    p.write_text(_text([{**r, "id": "" if i % 2 else "  "} for i, r in enumerate(ROWS)]))
    assert load_jsonl(p).groups == [str(n) for n in range(1, len(ROWS) + 1)]
    res = CliRunner().invoke(main, ["eval", str(p), "-r", "linear", "-k", "3", "--ci", "0"])
    assert res.exit_code == 0, res.output
    # rows that really share an id: the error says how many rows the one question holds
    p.write_text(_text([{**r, "id": "same"} for r in ROWS]))
    res = CliRunner().invoke(main, ["eval", str(p), "-r", "linear"])
    assert res.exit_code == 2
    assert "has 1 questions, fewer than k=5 folds (12 rows: rows that share an `id` are one question)" in res.output


def test_an_id_or_subject_that_is_not_text_is_named_by_its_line(tmp_path: Path) -> None:
    # Before (session 36): `"id": ["x"]` became the question "['x']" and `{"a": 1}` "{'a': 1}" without a word.
    rows = [*ROWS, {**ROWS[0], "id": ["x"]}, {**ROWS[1], "id": {"a": 1}}, {**ROWS[2], "subject": True},
            {**ROWS[3], "id": 7, "subject": "math"}]
    assert _error(tmp_path, _text(rows).encode()) == (
        "mine.jsonl:13: `id` must be text (or a number), not [\"x\"]\n"
        "mine.jsonl:14: `id` must be text (or a number), not {\"a\": 1}\n"
        "mine.jsonl:15: `subject` must be text (or a number), not true\n(3 rows to fix)")
