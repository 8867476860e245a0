"""`tierwise eval` on data a user recorded themselves, in shapes docs/routers.md allows (session 35): the
strong and weak fields swapped, 0–10 judge grades on which the tiers barely differ, and a gzip-compressed file.
The rows are GSM8K's, read from $TIERWISE_DATA and transformed here (never copied into the repo)."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.harness import unavailable
from tierwise.cli import main
from tierwise.evaluation.loaders import DataError, data_root, load_benchmark, load_jsonl
from tierwise.jsonl_lines import MAX_LINE_BYTES


@pytest.fixture(scope="module")
def gsm8k_rows() -> list[dict]:
    if data_root() is None:
        unavailable("../shared/data is not beside this checkout (nor $TIERWISE_DATA)")
    ds = load_benchmark("gsm8k")
    return [{"id": g, "prompt": p, "strong": float(s), "weak": float(w)}
            for g, p, s, w in zip(ds.groups, ds.prompts, ds.strong, ds.weak, strict=True)][:300]


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_swapped_strong_and_weak_is_refused_not_reported_upside_down(tmp_path: Path, gsm8k_rows: list[dict]) -> None:
    # Before: the local tier ahead on average (here GSM8K with the two fields swapped, 0.65 against 0.83) was scored:
    # APGR divides by strong − weak, so a good router read below 0.5 and the oracle near 0 — upside down, no word.
    swapped = _write(tmp_path / "swapped.jsonl", [dict(r, strong=r["weak"], weak=r["strong"]) for r in gsm8k_rows])
    res = CliRunner().invoke(main, ["eval", swapped, "-r", "linear", "--ci", "0", "--oracle"])
    assert res.exit_code == 2, res.output
    assert "weak (local) tier scores higher on average" in res.output
    assert "not swapped" in res.output
    # the same rows the right way round are scored
    right = CliRunner().invoke(main, ["eval", _write(tmp_path / "right.jsonl", gsm8k_rows), "--ci", "0", "--json"])
    assert right.exit_code == 0, right.output
    assert json.loads(right.output)["notes"] == []


def test_a_lead_within_its_noise_says_the_apgr_figures_are_noise(tmp_path: Path, gsm8k_rows: list[dict]) -> None:
    # 0–10 judge grades on which the strong tier leads by 1/300 of a point. Before: APGR −22.95 for random, +21.17 for
    # prompt-length, −6.45 for linear, each a division by a lead that is noise, with no word.
    rng = np.random.default_rng(35)
    weak = rng.integers(0, 11, len(gsm8k_rows))
    strong = np.roll(weak, 1)
    strong[int(np.argmax(strong < 10))] += 1  # the strong tier ahead by one point in all
    rows = [dict(r, strong=int(s), weak=int(w)) for r, s, w in zip(gsm8k_rows, strong, weak, strict=True)]
    graded = _write(tmp_path / "graded.jsonl", rows)
    res = CliRunner().invoke(main, ["eval", graded, "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.output)["notes"]
    assert any("not distinguishable from zero" in n and "noise" in n for n in notes), notes
    text = CliRunner().invoke(main, ["eval", graded, "--ci", "0"])
    assert "Note: the strong tier's lead over the weak one" in text.output


def test_a_gzip_compressed_file_reads_as_the_plain_one(tmp_path: Path, gsm8k_rows: list[dict]) -> None:
    # Before: "mine.jsonl.gz:1: not UTF-8 (byte 0x8b at column 2); save the file as UTF-8".
    plain = _write(tmp_path / "mine.jsonl", gsm8k_rows)
    packed = tmp_path / "mine.jsonl.gz"
    packed.write_bytes(gzip.compress(Path(plain).read_bytes()))
    a, b = load_jsonl(plain), load_jsonl(packed)
    assert a.prompts == b.prompts and a.groups == b.groups and b.name == "mine"
    assert list(a.strong) == list(b.strong) and list(a.weak) == list(b.weak)
    res = CliRunner().invoke(main, ["eval", str(packed), "-k", "2", "--ci", "0"])
    assert res.exit_code == 0, res.output
    # cut short (an interrupted download): named as such, not as an encoding
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(DataError, match="gzip-compressed but cannot be decompressed"):
        load_jsonl(cut)


def test_other_archives_say_to_unpack_them(tmp_path: Path, gsm8k_rows: list[dict]) -> None:
    plain = _write(tmp_path / "mine.jsonl", gsm8k_rows[:20])
    zipped = tmp_path / "mine.jsonl.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(plain, "mine.jsonl")
    with pytest.raises(DataError, match=r"a zip archive, not text; unpack it first \(`unzip mine.jsonl.zip`\)"):
        load_jsonl(zipped)


def test_a_line_without_end_is_bounded(tmp_path: Path) -> None:
    # Before: a line was read whole, however long: 500 MB of rows without line ends took 1.0 GB and 15 s before
    # "not valid JSON"; a 13 MB gzip file decompressing to one 3 GB line would take it all.
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"0" * (MAX_LINE_BYTES + 1024), compresslevel=1))
    with pytest.raises(DataError, match=r"bomb.jsonl.gz:1: a line longer than 64 MiB"):
        load_jsonl(bomb)


def test_a_file_whose_name_holds_a_comma_is_one_file(tmp_path: Path, gsm8k_rows: list[dict], monkeypatch) -> None:
    # Before: `tierwise eval "runs,2026.jsonl"` split the name at its comma: "unknown benchmark 'runs'".
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "runs,2026.jsonl", gsm8k_rows[:40])
    res = CliRunner().invoke(main, ["eval", "runs,2026.jsonl", "-k", "2", "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n"] == 40
    _write(tmp_path / "more.jsonl", gsm8k_rows[40:60])  # two files joined by a comma are still two
    both = CliRunner().invoke(main, ["eval", "more.jsonl,more.jsonl", "-k", "2", "--ci", "0", "--json"])
    assert json.loads(both.output)["n"] == 40, both.output
