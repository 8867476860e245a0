"""`tierwise cache train-verifier PAIRS`: a pairs file saved by Excel or Notepad (UTF-8 with a byte-order mark,
CRLF) was refused as "expected {text_a, text_b, label} (JSONDecodeError)" on line 1, and on an install without
the `embeddings` extra the command ended in a traceback (MissingExtra) after reading every pair."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from tierwise.cache.verifier_training import read_pairs
from tierwise.cli import main

PAIRS = [{"text_a": f"what is {i} plus {i}?", "text_b": f"tell me {i}+{i}", "label": i % 2} for i in range(240)]


def test_a_bom_crlf_pairs_file_reads_as_the_plain_one(tmp_path: Path) -> None:
    plain = "".join(json.dumps(p) + "\n" for p in PAIRS)
    (tmp_path / "plain.jsonl").write_text(plain, encoding="utf-8")
    (tmp_path / "excel.jsonl").write_bytes(b"\xef\xbb\xbf" + plain.replace("\n", "\r\n\r\n").encode())
    assert read_pairs(tmp_path / "excel.jsonl") == read_pairs(tmp_path / "plain.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes(plain.replace("what is 3", "¿qué es 3").encode("latin-1"))
    res = CliRunner().invoke(main, ["cache", "train-verifier", str(tmp_path / "latin1.jsonl"), "--out",
                                    str(tmp_path / "v.npz")])
    if "embeddings" not in res.output:  # with the extra installed the file is read (and refused) first
        assert res.exit_code == 1 and "latin1.jsonl:4: not UTF-8" in res.output, res.output


def test_without_the_embeddings_extra_it_says_so_without_a_traceback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as on an install without the extra
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    res = CliRunner().invoke(main, ["cache", "train-verifier", str(tmp_path / "pairs.jsonl"), "--out",
                                    str(tmp_path / "v.npz")])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "Error: embedding routers need the optional `embeddings` extra" in res.output
    assert not (tmp_path / "v.npz").exists()
