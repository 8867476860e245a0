"""Datasets, CV folds and the loaders (the RouteLLM data are read in place when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.harness import unavailable
from tierwise.evaluation.cv import cross_val_scores, group_folds
from tierwise.evaluation.dataset import OutcomeDataset, concat
from tierwise.evaluation.loaders import DataError, data_root, load_benchmark, load_jsonl, load_ledger
from tierwise.evaluation.metrics import routing_curve
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_outcomes.jsonl"
HAVE_DATA = data_root() is not None


@pytest.fixture
def _shared_data() -> None:
    if not HAVE_DATA:
        unavailable("../shared/data is not beside this checkout (nor $TIERWISE_DATA)")


needs_data = pytest.mark.usefixtures("_shared_data")


def test_folds_never_split_a_question():
    d = OutcomeDataset("t", [f"p{i}" for i in range(20)], np.ones(20), np.zeros(20), [f"g{i // 2}" for i in range(20)])
    folds = group_folds(d, 5)
    assert sorted(np.concatenate(folds).tolist()) == list(range(20))
    for f in folds:
        inside = {d.groups[i] for i in f}
        assert all(d.groups[j] not in inside for g in folds if g is not f for j in g)
    with pytest.raises(ValueError):
        group_folds(d, 1)


def test_cross_val_never_scores_a_prompt_it_trained_on():
    d = load_jsonl(FIXTURE)
    seen: list[set[str]] = []

    class Spy:
        def fit(self, data: OutcomeDataset) -> None:
            seen.append(set(data.prompts))

        def score(self, data: OutcomeDataset) -> np.ndarray:
            assert not (set(data.prompts) & seen[-1])
            return np.zeros(len(data))

    cross_val_scores(d, Spy, k=4)
    assert len(seen) == 4


def test_jsonl_loader_and_its_errors(tmp_path):
    d = load_jsonl(FIXTURE)
    assert len(d) == 48 and d.strong_responses is not None and set(d.subjects) == {"proof", "easy"}
    assert len(d.without_subjects(["proof"])) == 24
    both = concat([d, d.take([0, 1], name="sub")], "both")
    assert len(both) == 50 and len(set(both.groups)) == 50
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "strong": 1}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        load_jsonl(bad)
    bad.write_text("{nope\n")
    with pytest.raises(DataError, match="not valid JSON"):
        load_jsonl(bad)
    with pytest.raises(DataError, match="cannot read"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_ledger_loader_takes_judged_shadow_pairs(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"))
    pair = {"of": "r1", "prompt": "hard q", "strong": {"answer": "A", "outcome": 1}, "weak": {"answer": "B", "outcome": 0}}
    led.submit(LedgerRecord("r1-shadow", 1.0, "main", kind="shadow", shadow=pair, prompt="hard q"))
    led.submit(LedgerRecord("r2", 2.0, "main", prompt="easy q", extra={"outcome": {"strong": 1, "weak": 1}}))
    led.submit(LedgerRecord("r3", 3.0, "main", prompt="unjudged"))
    failed = {"of": "r4", "prompt": "q4", "strong": {"answer": "A", "outcome": 1},
              "weak": {"answer": "", "ok": False, "outcome": 0}}  # the shadow call failed: not evidence
    led.submit(LedgerRecord("r4-shadow", 4.0, "main", kind="shadow", shadow=failed, prompt="q4",
                            extra={"outcome": {"strong": 1, "weak": 0}}))
    led.flush()
    d = load_ledger(led)
    assert d.prompts == ["hard q", "easy q"] and d.gain.tolist() == [1, 0]
    assert d.weak_responses == ["B", ""]
    with pytest.raises(DataError, match="no records"):
        load_ledger(led, route="other")
    led.close()


@needs_data
def test_routellm_data_decontaminated_as_published():
    mmlu, gsm, mt = load_benchmark("mmlu"), load_benchmark("gsm8k"), load_benchmark("mt-bench")
    assert (len(mmlu), len(gsm), len(mt)) == (14037, 1307, 72)
    assert mmlu.strong.mean() == pytest.approx(0.8059, abs=1e-4) and mmlu.weak.mean() == pytest.approx(0.6809, abs=1e-4)
    assert gsm.weak_responses is not None and mt.strong.mean() == pytest.approx(9.212, abs=1e-3)
    assert len(load_benchmark("mmlu-no-hsm")) == 14037 - 270
    # the zero-training prompt-length baseline reproduces RouteLLM's published 0.583 / 0.597
    from tierwise.evaluation.metrics import apgr

    for d, published in ((mmlu, 0.583), (gsm, 0.597)):
        lengths = np.array([len(p) for p in d.prompts], dtype=float)
        assert apgr(routing_curve(lengths, d.strong, d.weak)) == pytest.approx(published, abs=0.003)


@pytest.mark.parametrize("row", [
    '{"prompt": "x", "strong": NaN, "weak": 0}',      # Python's json reads NaN: it used to reach the metrics
    '{"prompt": "x", "strong": 1, "weak": Infinity}',
    '{"prompt": null, "strong": 1, "weak": 0}',       # used to become the prompt "None"
    '{"prompt": 7, "strong": 1, "weak": 0}',
    '{"prompt": "x", "strong": "1", "weak": 0}',      # the documented type is a number
    '{"prompt": "x", "strong": true, "weak": 0}',
    '[1, 2]',
])
def test_jsonl_rows_of_the_wrong_type_name_their_line(tmp_path, row):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "strong": 1, "weak": 0}\n' + row + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: (`(prompt|strong|weak)` |a JSON array)"):
        load_jsonl(bad)


def test_eval_joins_the_ledger_with_other_data(tmp_path, monkeypatch):
    # docs/routers.md: DATA may be several of the data sets joined by commas, `ledger` among them.
    # Before: "unknown benchmark 'ledger'".
    import json

    import yaml
    from click.testing import CliRunner

    from tierwise.cli import main

    led = Ledger.open(str(tmp_path / "l.db"))
    for i in range(6):
        pair = {"of": f"r{i}", "prompt": f"q{i}", "strong": {"answer": "A", "outcome": 1},
                "weak": {"answer": "B", "outcome": i % 2}}
        led.submit(LedgerRecord(f"r{i}-shadow", float(i), "main", kind="shadow", shadow=pair, prompt=f"q{i}"))
    led.flush()
    led.close()
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"ledger": {"path": str(tmp_path / "l.db")}}))
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"prompt": f"p{i}", "strong": 9, "weak": 3 + i % 7}) + "\n" for i in range(12)))
    monkeypatch.setenv("TIERWISE_CACHE_DIR", str(tmp_path / "cache"))
    res = CliRunner().invoke(main, ["eval", f"ledger,{mine}", "-c", str(tmp_path / "t.yaml"), "-r", "linear",
                                    "-k", "3", "--ci", "0"])
    assert res.exit_code == 0, res.output
    assert "n=18" in res.output, res.output
