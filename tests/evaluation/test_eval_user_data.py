"""`tierwise eval` on a user's own data: train-only mode, several data sets at once, per-question
scores, a paired comparison against a baseline, and a warning when a saved router's strong-call
share on new data is far from the share it was calibrated for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

FIXTURE = str(Path(__file__).parent / "fixtures" / "tiny_outcomes.jsonl")


def rows_of(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_train_only_saves_without_cross_validation(tmp_path):
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "--no-cv", "--save", str(tmp_path / "r"),
                                    "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert not any("CV" in r["router"] for r in out["rows"])  # no fold was run
    assert out["saved"] and (tmp_path / "r.npz").exists()


def test_too_few_questions_for_the_folds_says_what_to_do(tmp_path):
    three = write(tmp_path / "tiny.jsonl", [{"prompt": f"question {i} about things", "strong": 1.0,
                                            "weak": float(i % 2)} for i in range(3)])
    res = CliRunner().invoke(main, ["eval", three, "-r", "linear"])
    assert res.exit_code == 2 and "has 3 questions, fewer than k=5 folds" in res.output
    assert "`-k 2`" in res.output and "`--no-cv`" in res.output and "--save" in res.output, res.output
    # each piece of advice works
    assert CliRunner().invoke(main, ["eval", three, "-r", "linear", "-k", "2"]).exit_code == 0
    saved = CliRunner().invoke(main, ["eval", three, "-r", "linear", "--no-cv", "--save", str(tmp_path / "r")])
    assert saved.exit_code == 0 and (tmp_path / "r.npz").exists(), saved.output
    one = write(tmp_path / "one.jsonl", [{"id": "q1", "prompt": "the only question", "strong": 1.0, "weak": 0.0},
                                        {"id": "q1", "prompt": "the only question again", "strong": 1.0, "weak": 0.5}])
    res = CliRunner().invoke(main, ["eval", one, "-r", "linear", "--save", str(tmp_path / "r1")])
    assert res.exit_code == 2 and "`-k" not in res.output and "`--no-cv` trains" in res.output, res.output
    assert "at least 2 distinct questions" in res.output
    assert CliRunner().invoke(main, ["eval", three, "-k", "1"]).exit_code == 2  # a usage error, not a traceback


def test_several_datasets_train_together_on_one_scale(tmp_path):
    graded = write(tmp_path / "graded.jsonl", [
        {**r, "id": f"g{i}", "strong": 1 + 9 * r["strong"], "weak": 1 + 9 * r["weak"]}
        for i, r in enumerate(rows_of(FIXTURE))])
    res = CliRunner().invoke(main, ["eval", f"{FIXTURE},{graded}", "-r", "linear", "-k", "3", "--ci", "0",
                                    "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n"] == 96 and 0 < out["strong"] <= 1  # the 1–10 grades were put on [0, 1]
    assert next(r for r in out["rows"] if r["router"].startswith("linear"))["apgr"] > 0.6


def test_per_question_scores_and_paired_lead_over_the_baseline(tmp_path):
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "-k", "3", "--ci", "200",
                                    "--scores", str(tmp_path / "s.jsonl"), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["router"]: r for r in json.loads(res.output)["rows"]}
    lin = rows["linear (3-fold CV)"]
    assert lin["baseline"] == "prompt-length"
    assert lin["lead"] == round(lin["apgr"] - rows["prompt-length"]["apgr"], 4)
    assert lin["lead_ci_low"] <= lin["lead"] <= lin["lead_ci_high"]
    per_q = rows_of(str(tmp_path / "s.jsonl"))
    assert len(per_q) == 48 and per_q[0]["id"] == "q1"
    assert {"strong", "weak", "random", "prompt-length", "linear (3-fold CV)"} <= set(per_q[0])
    table = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "100", "--baseline", "random"])
    assert "lead over random (paired 95%)" in table.output
    bad = CliRunner().invoke(main, ["eval", FIXTURE, "--baseline", "nothing-like-it"])
    assert bad.exit_code == 2 and "baseline" in bad.output


def test_a_saved_router_whose_share_drifts_on_new_data_is_flagged(tmp_path):
    saved = tmp_path / "r"
    assert CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "--no-cv", "--save", str(saved)]).exit_code == 0
    proofs = write(tmp_path / "proofs.jsonl", [r for r in rows_of(FIXTURE) if r["subject"] == "proof"])
    res = CliRunner().invoke(main, ["eval", proofs, "-r", str(saved) + ".json", "--target-share", "0.3",
                                    "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    check = json.loads(res.output)["saved_routers"][0]
    assert check["target_share"] == 0.3 and check["share"] > 0.5  # only hard prompts: far more strong calls
    assert any("calibrated for 30%" in w for w in check["warnings"])
    same = CliRunner().invoke(main, ["eval", FIXTURE, "-r", str(saved) + ".json", "--target-share", "0.5",
                                     "--ci", "0"])
    assert "but sends" not in same.output and "calibrated for 50% strong calls" in same.output


def test_a_saved_router_scored_on_its_own_training_queries_is_flagged_as_in_sample(tmp_path):
    # Before: scored on the data it was trained on, a saved router showed APGR above 1 with no word that the
    # figures were in-sample.
    rows = rows_of(FIXTURE)
    train = write(tmp_path / "train.jsonl", rows[:32])
    held_out = write(tmp_path / "held_out.jsonl", rows[32:])
    mixed = write(tmp_path / "mixed.jsonl", rows[24:])
    saved = tmp_path / "r"
    assert CliRunner().invoke(main, ["eval", train, "-r", "linear", "--no-cv", "--save", str(saved)]).exit_code == 0

    def check(data):
        res = CliRunner().invoke(main, ["eval", data, "-r", str(saved) + ".json", "--ci", "0", "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)["saved_routers"][0]

    own = check(train)
    assert own["in_training"] == 32
    assert any("32 of these 32 queries (100%) are among its training prompts" in w for w in own["warnings"])
    assert check(mixed)["in_training"] == 8
    fresh = check(held_out)
    assert "in_training" not in fresh and not any("training prompts:" in w for w in fresh["warnings"])


def test_a_misspelt_field_in_a_jsonl_row_is_named_and_extra_columns_are_kept_out_quietly(tmp_path):
    # Before: `strong_reponse` was dropped without a word (the row's strong answer silently lost).
    from tierwise.evaluation.loaders import DataError, load_jsonl

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "strong": 1, "weak": 0, "strong_reponse": "x"}) + "\n")
    try:
        load_jsonl(bad)
    except DataError as e:
        assert "bad.jsonl:1: unknown field `strong_reponse` (did you mean `strong_response`?)" in str(e)
    else:
        raise AssertionError("a misspelt field was accepted")
    fine = tmp_path / "fine.jsonl"
    fine.write_text(json.dumps({"prompt": "p", "strong": 1, "weak": 0, "model_pair": "gpt-4/mixtral"}) + "\n")
    assert len(load_jsonl(fine)) == 1  # a column of the user's own is not a typo


def test_the_table_says_what_its_figures_mean_and_which_prices_its_dollars_use(tmp_path):
    # Before: "$/1k at CPT(50%)" came from RouteLLM's GPT-4/Mixtral prices, named nowhere in the output.
    res = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "0", "--price-strong", "3", "--price-weak", "0",
                                    "--tokens-per-query", "1000"])
    assert res.exit_code == 0, res.output
    assert "at $3/M tokens strong and $0/M weak, 1000 tokens a query" in res.output
    assert "APGR: the share of the weak-to-strong quality gap" in res.output
    row = next(line for line in res.output.splitlines() if line.startswith("| prompt-length |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    cpt50, usd50 = float(cells[-4].rstrip("%")), float(cells[-2])
    # 1,000 queries at the strong-call share (shown to 0.1%: the dollars agree to that rounding)
    assert usd50 == pytest.approx(1000 * 1000 * cpt50 / 100 * 3 / 1e6, abs=0.002)


def test_evaluate_says_what_it_is_training(tmp_path):
    # `tierwise eval` on a large file ran for minutes without a word; on a terminal it now says which router and
    # fold it is training (stderr, so --json output stays clean), from these messages.
    from tierwise.evaluation.loaders import load_jsonl
    from tierwise.evaluation.replay import evaluate

    heard: list[str] = []
    evaluate(load_jsonl(FIXTURE), ["linear"], folds=3, progress=heard.append)
    assert heard == [f"linear: training fold {f} of 3 on 48 queries" for f in (1, 2, 3)]


def _synthetic(seed: int, n: int) -> list[dict]:
    """Prompts whose topic words say how often the weak model fails, each with two reference numbers of its own
    (tokens no other prompt has: what a model fitted on these prompts can memorise, and new prompts never show)."""
    import random

    rng = random.Random(seed)
    hard = ["integral", "proof", "derive", "optimise", "theorem", "recursion"]
    easy = ["capital", "colour", "spell", "define", "translate", "weather"]
    out = []
    for i in range(n):
        h = rng.random() < 0.2
        words = [*rng.sample(hard if h else easy, 2), f"ref{rng.randrange(10**6)}", f"tag{rng.randrange(10**6)}"]
        rng.shuffle(words)
        out.append({"id": f"s{seed}-{i}", "prompt": "please " + " ".join(words), "strong": 1,
                    "weak": 0 if rng.random() < (0.6 if h else 0.2) else 1})
    return out


@pytest.mark.parametrize("cv", [True, False])
def test_a_saved_router_is_calibrated_on_scores_of_prompts_it_did_not_train_on(tmp_path, cv):
    # Before (session 24): `linear` (and `mf-*`, `ensemble`) kept the quantiles of its own training prompts' scores,
    # which fit their labels (the memorised reference numbers spread them), so on new prompts of the same kind a
    # router saved for 30% sent 19.7%, and the check blamed the data ("not distributed as on its training data").
    train = write(tmp_path / "train.jsonl", _synthetic(1, 600))
    new = write(tmp_path / "new.jsonl", _synthetic(2, 600))
    saved = str(tmp_path / "r")
    res = CliRunner().invoke(main, ["eval", train, "-r", "linear", "--save", saved, "--ci", "0",
                                    *([] if cv else ["--no-cv"])])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["eval", new, "-r", saved + ".json", "--target-share", "0.3", "--ci", "0", "--json"])
    check = json.loads(res.output)["saved_routers"][0]
    assert abs(check["share"] - 0.3) <= 0.05 and check["warnings"] == [], check


def test_one_prompt_under_two_ids_is_never_on_both_sides_of_a_fold(tmp_path):
    # Before (session 24): folds split by `id` only, so a prompt a user's export held twice under two ids (the same
    # question asked again, a row per model run) was trained on and scored: on labels that are pure noise `linear`
    # scored APGR 0.74 in cross-validation (0.98 on a 50 MB file of repeated prompts).
    import random

    rng = random.Random(3)
    rows = [{"prompt": f"question {rng.randrange(10**9)} about {rng.randrange(10**9)}", "strong": 1,
             "weak": rng.randrange(2)} for _ in range(150)]
    twice = write(tmp_path / "twice.jsonl", [{**r, "id": f"{copy}-{i}"} for copy in "ab" for i, r in enumerate(rows)])
    res = CliRunner().invoke(main, ["eval", twice, "-r", "linear", "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    apgr = next(r["apgr"] for r in json.loads(res.output)["rows"] if r["router"].startswith("linear"))
    assert apgr < 0.7, apgr  # noise: about 0.5


@pytest.mark.parametrize("variant", ["trailing-newline", "case-and-spaces"])
def test_one_prompt_written_two_ways_is_never_on_both_sides_of_a_fold(tmp_path, variant):
    # review24b: the folds merged a prompt only when written byte for byte alike, so the same question exported
    # once with a trailing newline (or capitalised, with doubled spaces) was trained on and scored: linear APGR
    # 0.741 on labels that are pure noise (0.45 when the copies are alike), the featurizer reading both the same.
    import random

    rng = random.Random(3)
    rows = [{"prompt": f"question {rng.randrange(10**9)} about {rng.randrange(10**9)}", "strong": 1,
             "weak": rng.randrange(2)} for _ in range(150)]
    other = {"trailing-newline": lambda p: p + "\n", "case-and-spaces": lambda p: p.capitalize().replace(" ", "  ")}
    path = write(tmp_path / "twice.jsonl", [{**r, "id": f"{copy}-{i}", "prompt": other[variant](r["prompt"])
                                             if copy == "b" else r["prompt"]} for copy in "ab" for i, r in enumerate(rows)])
    res = CliRunner().invoke(main, ["eval", path, "-r", "linear", "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    apgr = next(r["apgr"] for r in json.loads(res.output)["rows"] if r["router"].startswith("linear"))
    assert apgr < 0.65, apgr  # noise: about 0.5


def test_folds_merging_shared_prompts_keep_every_other_querys_fold():
    from tierwise.evaluation.cv import group_folds
    from tierwise.evaluation.dataset import OutcomeDataset

    prompts = [f"p{i}" for i in range(40)]
    plain = OutcomeDataset("d", prompts, [1.0] * 40, [0.0] * 40, [f"g{i}" for i in range(40)])
    dup = OutcomeDataset("d", [*prompts[:39], "p3"], [1.0] * 40, [0.0] * 40, [f"g{i}" for i in range(40)])
    before = group_folds(plain, 5)
    fold_of = {int(i): f for f, ix in enumerate(group_folds(dup, 5, merge_prompts=True)) for i in ix}
    assert fold_of[39] == fold_of[3]
    assert all(fold_of[int(i)] == f for f, ix in enumerate(before) for i in ix if i != 39)
    # too few questions once merged: the folds of the ids (a data set of one prompt under five ids still runs)
    same = OutcomeDataset("d", ["p"] * 5, [1.0] * 5, [0.0] * 5, [f"g{i}" for i in range(5)])
    assert sorted(len(f) for f in group_folds(same, 5, merge_prompts=True)) == [1] * 5


def test_a_data_set_where_every_query_has_the_same_gain_says_no_router_can_beat_random(tmp_path):
    # Before (session 24): every label alike (strong 1, weak 0 on every row) gave every router, random and prompt
    # length APGR 0.500 exactly, with no word why; a router saved from it scores every prompt alike.
    same = write(tmp_path / "same.jsonl", [{"prompt": f"question number {i}", "strong": 1, "weak": 0}
                                           for i in range(20)])
    res = CliRunner().invoke(main, ["eval", same, "-r", "linear", "--ci", "0"])
    assert res.exit_code == 0, res.output
    assert "every query has the same gain (strong − weak = 1)" in res.output, res.output
    out = json.loads(CliRunner().invoke(main, ["eval", same, "--ci", "0", "--json"]).output)
    assert any("same gain" in n for n in out["notes"])
    varied = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "0", "--json"])
    assert json.loads(varied.output)["notes"] == []


def test_save_trains_the_first_spec_that_is_not_a_saved_router(tmp_path):
    # Before (session 24): `-r saved.json -r linear --save new` cross-validated, then failed with "unknown router
    # 'saved.json'" (the first -r was taken as the spec to train); `--save` without any spec failed only after the
    # baselines ran.
    saved = str(tmp_path / "old")
    assert CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "--no-cv", "--save", saved]).exit_code == 0
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", saved + ".json", "-r", "linear", "-k", "3", "--ci", "0",
                                    "--save", str(tmp_path / "new"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["saved"] == str(tmp_path / "new.json")
    only_saved = CliRunner().invoke(main, ["eval", FIXTURE, "-r", saved + ".json", "--save", str(tmp_path / "x")])
    assert only_saved.exit_code == 2 and "--save needs a --router spec to train" in only_saved.output
    assert "Traceback" not in only_saved.output and not (tmp_path / "x.json").exists()


def test_drop_subject_names_a_subject_the_data_does_not_have_and_an_empty_remainder(tmp_path):
    # Before (session 24): `--drop-subject nosuch` (a typo) dropped nothing without a word, and dropping every
    # subject ended in "scores and outcomes must be non-empty 1-D arrays of the same length".
    res = CliRunner().invoke(main, ["eval", FIXTURE, "--drop-subject", "prooof", "--ci", "0"])
    assert res.exit_code == 2 and "no query has subject 'prooof'" in res.output and "proof" in res.output, res.output
    subjects = sorted({r["subject"] for r in rows_of(FIXTURE)})
    res = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "0", *[a for s in subjects for a in ("--drop-subject", s)]])
    assert res.exit_code == 2 and "no queries left" in res.output and "Traceback" not in res.output, res.output
    ok = CliRunner().invoke(main, ["eval", FIXTURE, "--drop-subject", subjects[0], "--ci", "0"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("option", ["--price-strong", "--price-weak", "--tokens-per-query"])
@pytest.mark.parametrize("value", ["-5", "nan", "inf"])
def test_prices_and_token_counts_must_be_finite_and_not_negative(option, value):
    # Before (session 24): `--price-strong -5` printed a $/1k of 0.005 and `nan` a column of nan, without a word.
    res = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "0", option, value])
    assert res.exit_code == 2 and option in res.output and "Traceback" not in res.output, res.output


def test_save_with_fewer_questions_than_folds_calibrates_on_one_fold_per_question(tmp_path):
    three = write(tmp_path / "three.jsonl", [{"prompt": f"question {i} about things", "strong": 1.0,
                                              "weak": float(i % 2)} for i in range(3)])
    res = CliRunner().invoke(main, ["eval", three, "-r", "linear", "--no-cv", "--save", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["saved_notes"] == [], res.output
    one = write(tmp_path / "one.jsonl", [{"id": "q", "prompt": f"the question, take {i}", "strong": 1.0,
                                          "weak": float(i % 2)} for i in range(3)])
    res = CliRunner().invoke(main, ["eval", one, "-r", "linear", "--no-cv", "--save", str(tmp_path / "r1"), "--json"])
    assert res.exit_code == 0, res.output
    assert "calibrated on its training prompts' own scores" in json.loads(res.output)["saved_notes"][0]
