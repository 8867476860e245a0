"""Without the `embeddings` extra, `tierwise eval DATA -r transfer --no-cv --save PATH` (the README's command for a
router that carries across benchmarks) trained the router, then failed on its training profile, which embeds the
prompts, and said only "embedding routers need the optional `embeddings` extra". Now it fails before training and
names the routers that need no extra (`transfer-lsa` routes as `transfer` does)."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from tierwise.cli import main
from tierwise.routers import transfer

FIXTURE = str(Path(__file__).parent / "fixtures" / "tiny_outcomes.jsonl")


def test_save_says_what_is_missing_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as on an install without the extra
    fitted = []
    real_fit = transfer.TransferRouter.fit
    monkeypatch.setattr(transfer.TransferRouter, "fit", lambda self, *a, **k: fitted.append(1) or real_fit(self, *a, **k))
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "transfer", "--no-cv", "--save", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "`embeddings` extra" in res.output and "`transfer-lsa` (`transfer` without its options member)" in res.output
    assert fitted == [] and not (tmp_path / "r.json").exists()
    # the advice works without the extra
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "transfer-lsa", "--no-cv", "--save", str(tmp_path / "r")])
    assert res.exit_code == 0 and (tmp_path / "r.json").exists(), res.output

