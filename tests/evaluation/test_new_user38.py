"""A first-time user's session 38 with `tierwise eval`: the paired comparison named by the router as given to
`--router`, a misnamed baseline refused before any training, and a saved `transfer` router's row named
`transfer` (not its internal kind `options`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from tierwise.cli import main
from tierwise.routers import make_router
from tierwise.routers.features import embedding_available

FIXTURE = str(Path(__file__).parent / "fixtures" / "tiny_outcomes.jsonl")


def test_baseline_takes_a_router_as_given_to_router(tmp_path):
    # Before: `--baseline linear` trained every router, then failed: "baseline 'linear' is not one of the rows:
    # random, prompt-length, linear (3-fold CV)" -- the row's name had to be quoted whole.
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "-r", "knn-lsa", "-k", "3", "--ci", "50",
                                    "--baseline", "linear", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["router"]: r for r in json.loads(res.output)["rows"]}
    knn = rows["knn-lsa (3-fold CV)"]
    assert knn["baseline"] == "linear (3-fold CV)"
    assert knn["lead"] == round(knn["apgr"] - rows["linear (3-fold CV)"]["apgr"], 4)
    saved = str(tmp_path / "mine")
    assert CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "--no-cv", "--save", saved]).exit_code == 0
    for name in (saved, saved + ".json", "mine"):  # its path as given to --router, with or without .json, its stem
        res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", saved + ".json", "--ci", "0", "--baseline", name,
                                        "--json"])
        assert res.exit_code == 0, res.output
        rows = {r["router"]: r for r in json.loads(res.output)["rows"]}
        assert rows["prompt-length"]["baseline"] == "mine (saved linear)", name


def test_a_baseline_that_names_no_row_is_refused_before_training():
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "-k", "3", "--baseline", "stack"])
    assert res.exit_code != 0
    assert "baseline 'stack' is not one of the rows" in res.output and "linear" in res.output
    assert "training" not in res.output and "Traceback" not in res.output  # refused before the CV ran
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "--baseline", "oracle"])
    assert res.exit_code != 0 and "needs --oracle" in res.output and "training" not in res.output


def test_a_saved_transfer_router_is_named_by_its_spec():
    # Before: `-r transfer --save routers/sql` gave the row `sql (saved options)` (the class's internal kind)
    from tierwise.evaluation.deployment import spec_of

    assert spec_of(make_router("linear")) == "linear"
    if embedding_available():
        assert spec_of(make_router("transfer")) == "transfer"
        assert spec_of(make_router("transfer-lsa-options")) == "transfer-lsa-options"
        assert spec_of(make_router("transfer-lsa-options-minilm")) == "transfer-lsa-options-minilm"


def test_an_embedding_router_draws_no_loading_bar_into_a_pipe(tmp_path):
    # Before: transformers' "Loading weights: 100%|████| 103/103" bar went to stderr each time the sentence model
    # loaded, between `tierwise eval`'s plain stage lines (and into `--json`'s `2>&1`).
    if not embedding_available():
        return  # the embeddings extra: scripts/test.sh installs it, so CI runs this
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "knn-embedding", "-k", "3", "--ci", "0", "--no-emb-cache",
                                    "--json"])
    assert res.exit_code == 0, res.output
    assert res.stderr == "", res.stderr


def test_eval_help_gives_the_placement_defaults_as_values():
    # Before: "[default: routers/placement.py's PLACEMENT]" and "[default: the route's default `placement_bank`]":
    # a name in the source where a first-time user reads the help
    from tierwise.policies.learned_config import PLACEMENT_BANK
    from tierwise.routers.placement import PLACEMENT

    text = " ".join(re.sub(r"-\n\s+", "-", CliRunner().invoke(main, ["eval", "--help"]).output).split())
    assert f"[default: {PLACEMENT}, as a `learned` route's `placement`]" in text
    assert f"[default: {PLACEMENT_BANK:g} (off), as a `learned` route's `placement_bank`]" in text
    assert "placement.py" not in text


def test_the_last_line_says_when_the_best_router_is_below_prompt_length(tmp_path):
    # Before: "done: 450 queries, best stack-lsa (5-fold CV) APGR 0.652" on data where prompt length scored 0.661:
    # read in a CI log, the line recommended a router that lost to the untrained baseline.
    rows = [{"id": str(i), "prompt": ("word " * (5 + i % 40)).strip() + f" {i}", "strong": 1,
             "weak": int(i % 40 < 20)} for i in range(120)]  # the long prompts are the ones the weak model fails
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(main, ["eval", str(data), "-r", "knn-lsa", "-k", "3", "--ci", "0"])
    assert res.exit_code == 0, res.output
    last = res.stderr.splitlines()[-1]
    assert "best knn-lsa (3-fold CV) APGR" in last and "(below prompt-length's " in last, res.stderr
