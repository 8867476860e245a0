"""The `transfer` router's session-17 options (issue 22): counts of multiple-choice structure, subject-balanced
training and member weights from leave-subject-out scores — learned, saved, restored, and served by a gateway
`learned` route."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.routers.saved import saved_before
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.choices import CHOICE_NAMES, choice_features, parse_choices
from tierwise.routers.transfer import CHOICES, PLAIN_SHAPE, oof_weights, subject_factors

HARD_STEMS = ("Which of the following is NOT a property of {w}?", "All of the following describe {w} EXCEPT")
EASY_STEMS = ("What is {w} usually called?", "Which word names {w}?")
HARD_OPTIONS = ("I only", "II and III only", "I, II, and III", "none of the above")
SUBJECTS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")


def mc_prompt(stem: str, options: list[str], style: str = "dot") -> str:
    fmt = {"dot": "{l}. {o}", "paren": "({l}) {o}", "bracket": "{l}) {o}"}[style]
    return stem + "\n" + "\n".join(fmt.format(l="ABCDEFGHIJ"[i], o=o) for i, o in enumerate(options)) + "\nAnswer:"


def mc_data(n_per: int = 10) -> OutcomeDataset:
    """Hard questions (an exception asked, combined statements offered) fail the weak model in every subject;
    the subjects differ in size, so that the balanced weights have something to balance."""
    prompts, strong, weak, subjects = [], [], [], []
    for s_i, subject in enumerate(SUBJECTS):
        for i in range(n_per * (1 + 2 * (s_i == 0))):
            w = f"{subject} item {i}"
            hard = i % 2 == 0
            stem = (HARD_STEMS if hard else EASY_STEMS)[i % 4 // 2].format(w=w)
            opts = list(HARD_OPTIONS) if hard else [f"{w} red", f"plain {i}", f"blue thing {s_i}", "green"]
            prompts.append(mc_prompt(stem, opts))
            strong.append(1.0)
            weak.append(0.0 if hard else 1.0)
            subjects.append(subject)
    return OutcomeDataset("mc", prompts, np.array(strong), np.array(weak),
                          [f"mc:{i}" for i in range(len(prompts))], subjects)


def test_choice_counts_read_structure_on_one_scale_for_four_and_ten_options():
    stem, opts = parse_choices(mc_prompt("Pick one.", ["a", "b", "c", "d"], "paren"))
    assert stem == "Pick one." and opts == ["a", "b", "c", "d"]
    assert parse_choices(mc_prompt("Pick.", ["x", "y"], "bracket"))[1] == ["x", "y"]
    assert parse_choices("No options here.\nA. only one")[1] == []  # a single lettered line is not a question's options
    assert not choice_features("Write a poem about the sea.").any()
    f = dict(zip(CHOICE_NAMES, choice_features(mc_prompt("Which of the following is NOT true?", list(HARD_OPTIONS))),
                 strict=True))
    assert f["stem_exception"] == 1.0 and f["option_combinations"] == 1.0
    statements = mc_prompt("Statement 1 | x. Statement 2 | y.", ["12", "3.5", "x+1", "7"])
    f = dict(zip(CHOICE_NAMES, choice_features(statements), strict=True))
    assert f["statements"] == 1.0 and f["numeric_option_share"] == 1.0 and f["stem_exception"] == 0.0
    # "not" in a statement that is not the question is no exception asked
    assert choice_features(mc_prompt("The cat did not move. What moved?", ["dog", "cow"]))[0] == 0.0
    # the same structure with 10 options instead of 4 keeps its shares, overlap and spread
    four = choice_features(mc_prompt("Compute.", ["1", "word here"] * 2))
    ten = choice_features(mc_prompt("Compute.", ["1", "word here"] * 5))
    assert four[CHOICE_NAMES.index("numeric_option_share")] == 0.5 == ten[CHOICE_NAMES.index("numeric_option_share")]
    for k in ("option_log_words", "option_length_spread"):
        assert ten[CHOICE_NAMES.index(k)] == pytest.approx(four[CHOICE_NAMES.index(k)])


def test_subject_factors_balance_subjects_inside_each_source_only():
    src = np.array(["a"] * 12 + ["b"] * 4)
    subj = ["x"] * 9 + ["y"] * 3 + ["z"] * 4
    f = subject_factors(src, subj, 1.0)
    assert f[:12].sum() == pytest.approx(12.0) and f[12:].sum() == pytest.approx(4.0)  # sources keep their weight
    assert f[:9].sum() == pytest.approx(f[9:12].sum())  # every subject the same in all
    f = subject_factors(src, subj, 0.5)
    assert f[:9].sum() / f[9:12].sum() == pytest.approx(np.sqrt(3.0))  # in proportion to √size
    assert np.array_equal(subject_factors(src, subj, 0.0), np.ones(16))


def test_oof_weights_give_a_member_no_weight_below_random():
    d = mc_data(20)  # 160 queries: a source of fewer than 100 does not vote
    good = 1.0 - d.weak + 0.01 * np.arange(len(d)) / len(d)
    w = oof_weights(np.stack([good, -good], axis=1), d, 0.5)
    assert w[0] > 0 and w[1] == 0.0
    assert np.array_equal(oof_weights(np.stack([-good, -good], axis=1), d, 0.5), np.ones(2))  # none leads: equal


def test_transfer_router_with_choice_counts_and_subject_options_learns_and_round_trips(tmp_path):
    d = mc_data(20)
    with pytest.raises(ValueError, match="weigh"):
        make_router("transfer-lsa", weigh="best")
    with pytest.raises(ValueError, match="subject_power"):
        make_router("transfer-lsa", subject_power=2.0)
    with pytest.raises(ValueError, match="shape counts"):
        make_router("transfer-lsa", shape=("stem_exception", "stem_exception"))
    r = make_router("transfer-lsa", shape=PLAIN_SHAPE + CHOICES, subject_power=0.5, weigh="subject-oof").fit(d)
    hard = d.weak == 0
    s = r.score(d)
    assert s[hard].mean() > s[~hard].mean()
    assert not np.array_equal(r.weights, np.ones(3))  # the weights came from the leave-subject-out scores
    # The shape member alone reads the structure: a new subject's hard question outranks its easy one.
    shape_only = make_router("transfer-lsa", members=("shape-ridge-gain",), shape=CHOICES).fit(d)
    new_hard = mc_prompt("Which of the following is NOT a kind of omega?", list(HARD_OPTIONS))
    new_easy = mc_prompt("What is omega usually called?", ["omega one", "plain", "blue", "green"])
    assert shape_only.score_text(new_hard) > shape_only.score_text(new_easy)
    path = save_router(r, tmp_path / "mc")
    meta = json.loads(path.read_text())
    assert meta["subject_power"] == 0.5 and meta["weigh"] == "subject-oof" and "option_overlap" in meta["shape"]
    r2 = load_router(path)
    assert (r2.shape, r2.subject_power, r2.weigh) == (r.shape, 0.5, "subject-oof")
    np.testing.assert_allclose(r2.weights, r.weights)
    np.testing.assert_allclose(r2.score(d), s, rtol=1e-2, atol=1e-3)
    assert r2.score_text(d.prompts[4]) == pytest.approx(s[4], abs=1e-3)
    # a router saved before these options (no subject_power / weigh in its settings) restores to the old behaviour
    old = make_router("transfer-lsa", shape=PLAIN_SHAPE, subject_power=0.0, weigh="equal").fit(d)
    r3 = saved_before(old, tmp_path / "old", d, "subject_power", "weigh")
    assert (r3.subject_power, r3.weigh) == (0.0, "equal")


def test_learned_route_serves_the_transfer_router_with_choice_counts(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                     tmp_path):
    d = mc_data()
    r = make_router("transfer-lsa").fit(d)  # the default reads the choice counts (session 18)
    path = str(save_router(r, tmp_path / "router"))
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": path, "strong": "frontier", "weak": "local", "target_share": 0.5}}))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    hard = mc_prompt("Which of the following is NOT a property of alpha item 40?", list(HARD_OPTIONS))
    easy = mc_prompt("What is alpha item 41 usually called?", ["alpha item 41 red", "plain 41", "blue thing 0", "green"])
    ask = oai(g).chat.completions.create
    assert ask(model="main", messages=[{"role": "user", "content": hard}]).choices[0].message.content == "frontier answer"
    assert ask(model="main", messages=[{"role": "user", "content": easy}]).choices[0].message.content == "local answer"


def test_the_default_transfer_router_uses_the_options_and_routers_saved_before_keep_their_settings(tmp_path):
    """Session 18: the pre-registered rule made the choice counts, subject balance and leave-subject-out weights
    the default. A router saved with the earlier default (as `tierwise eval --save` wrote it then) loads and
    scores exactly as it did; the new default routes differently from it."""
    d = mc_data(20)
    new = make_router("transfer-lsa").fit(d)
    explicit = make_router("transfer-lsa", shape=PLAIN_SHAPE + CHOICES, subject_power=0.5,
                           weigh="subject-oof-shrunk").fit(d)  # the default since session 30 (round 11)
    np.testing.assert_array_equal(new.score(d), explicit.score(d))
    assert not np.array_equal(new.weights, np.ones(3))  # weighed by the members' leave-subject-out leads
    # a router saved with session 18's weights (unshrunk) restores with them
    s18 = make_router("transfer-lsa", weigh="subject-oof").fit(d)
    r18 = load_router(save_router(s18, tmp_path / "s18"))
    assert r18.weigh == "subject-oof"
    np.testing.assert_allclose(r18.weights, s18.weights)
    before = make_router("transfer-lsa", shape=PLAIN_SHAPE, subject_power=0.0, weigh="equal").fit(d)
    assert not np.allclose(before.score(d), new.score(d))
    path = save_router(before, tmp_path / "before")
    r = load_router(path)
    assert (r.shape, r.subject_power, r.weigh) == (PLAIN_SHAPE, 0.0, "equal")
    np.testing.assert_array_equal(r.weights, np.ones(3))
    np.testing.assert_allclose(r.score(d), before.score(d), rtol=1e-6, atol=1e-6)
    assert r.score_text(d.prompts[0]) == pytest.approx(before.score(d)[0], abs=1e-3)


def test_shrunk_weights_are_the_leave_subject_out_weights_half_way_to_equal(tmp_path):
    """Session 30 (transfer11): `weigh="subject-oof-shrunk"` keeps every member at least a sixth of the weight (three
    members) however little it led inside the training data, and saves and restores as it was fitted."""
    d = mc_data(20)
    d.weak[::3] = 1 - d.weak[::3]  # noise, so that the members lead by different amounts
    plain = make_router("transfer-lsa", weigh="subject-oof").fit(d)
    shrunk = make_router("transfer-lsa", weigh="subject-oof-shrunk").fit(d)
    w = plain.weights / plain.weights.sum()
    np.testing.assert_allclose(shrunk.weights, 0.5 * w + 0.5 / 3)
    assert shrunk.weights.min() >= 0.5 / 3 and not np.allclose(shrunk.weights, 1 / 3) and not np.allclose(w, 1 / 3)
    r2 = load_router(save_router(shrunk, tmp_path / "shrunk"))
    assert r2.weigh == "subject-oof-shrunk"
    np.testing.assert_allclose(r2.weights, shrunk.weights)
    np.testing.assert_allclose(r2.score(d), shrunk.score(d), rtol=1e-6, atol=1e-6)
