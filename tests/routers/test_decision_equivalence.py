"""The faster request path of `transfer-lsa` (the default `transfer` configuration) and `stack-lsa` scores real
prompts exactly as the session-18 code did (tests/routers/reference_scoring.py): the same token hashes (C and numpy
paths), the same shape and choice features, the same scores and so the same decisions. Real prompts: the longest
MMLU questions (nearly half hold non-ASCII characters), MMLU questions in the 5-shot format, GSM8K and MT-Bench,
from the RouteLLM data in ../shared/data ($TIERWISE_DATA)."""

from __future__ import annotations

import os
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import IN_CI, unavailable
from tests.routers import reference_scoring as ref
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import data_root, load_benchmark
from tierwise.routers import features, make_router
from tierwise.routers.choices import asks_exception, choice_features, parse_choices
from tierwise.routers.features import (
    SHAPE_GROUPS,
    SHAPE_NAMES,
    digit_count,
    python_hashes,
    shape_features,
    shape_groups,
)

SHARES = np.linspace(0.05, 0.95, 19)


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    if data_root() is None:
        unavailable("../shared/data is not beside this checkout (nor $TIERWISE_DATA)")
    mmlu = load_benchmark("mmlu")
    rng = np.random.default_rng(7)
    some = [mmlu.prompts[i] for i in rng.choice(len(mmlu), 150, replace=False)]
    shots = ["The following are multiple choice questions (with answers) about law.\n\n"
             + "".join(f"{mmlu.prompts[j]} {'ABCD'[j % 4]}\n\n" for j in rng.choice(len(mmlu), 5, replace=False))
             + mmlu.prompts[i] for i in rng.choice(len(mmlu), 40, replace=False)]
    gsm8k = load_benchmark("gsm8k").prompts
    return (sorted(mmlu.prompts, key=len)[-150:] + some + shots + list(load_benchmark("mt-bench").prompts)
            + [gsm8k[i] for i in rng.choice(len(gsm8k), 60, replace=False)])


@pytest.fixture(scope="module")
def routers(prompts: list[str]) -> dict[str, object]:
    """Both routers fitted on a part of GSM8K + MT-Bench + MMLU (as trained routers are: several sources)."""
    rng = np.random.default_rng(3)
    parts = [unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench", "mmlu")]
    parts = [d.take(rng.choice(len(d), min(len(d), k), replace=False)) for d, k in zip(parts, (120, 40, 160),
                                                                                          strict=True)]
    train = concat(parts, "mixed")
    return {"transfer-lsa": make_router("transfer-lsa").fit(train), "stack-lsa": make_router("stack-lsa").fit(train)}


def test_the_native_hashes_were_built_under_ci():
    if features.native_hashes is None:
        if IN_CI or os.environ.get("CI") == "true":
            pytest.fail("tierwise.routers._tokenhash did not build or load (setup.py ext_modules); CI=true: the "
                        "numpy path may not stand in silently")
        unavailable("the C token hashes were not built (no compiler at install?)")


def test_token_hashes_are_the_reference_tokens_crc32_on_real_prompts(prompts):
    non_ascii = 0
    for p in prompts:
        want = ref.token_hashes(p)
        features.token_hashes.cache_clear()
        assert np.array_equal(features.token_hashes(p), want), p[:80]
        assert np.array_equal(python_hashes(p), want[:-2]), p[:80]
        non_ascii += not p.isascii()
    assert non_ascii > 50  # the multi-byte 4-grams were exercised


WHITESPACE = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.sampled_from(list("aZ9 .,-\n\t") + list(WHITESPACE) + list("éßİıſK€中😀\u0301\x00²٣"))
               | st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_native_and_numpy_hashes_match_the_reference_on_any_text(text):
    want = ref.token_hashes(text)
    assert np.array_equal(python_hashes(text), want[:-2])
    assert digit_count(text) == sum(map(str.isdigit, text))
    if features.native_hashes is not None:
        assert np.array_equal(np.frombuffer(features.native_hashes(text.lower()), dtype=np.int64), want[:-2])


def test_a_long_mixed_text_hashes_as_the_reference():
    text = "Ünïcödé x² + ٣ — straße ✓ 中文, \u2003 tab\there; " * 4000  # ~180,000 characters
    features.token_hashes.cache_clear()
    assert np.array_equal(features.token_hashes(text), ref.token_hashes(text))


def test_a_lone_surrogate_fails_as_before():
    features.token_hashes.cache_clear()
    with pytest.raises(UnicodeEncodeError):
        ref.token_hashes("a\ud800b")
    with pytest.raises(UnicodeEncodeError):
        features.token_hashes("a\ud800b")


def test_shape_and_choice_features_are_the_reference_ones(prompts):
    for k, p in enumerate(prompts):
        full = ref.shape_features(p)
        assert np.array_equal(shape_features(p), full), p[:80]
        for g in SHAPE_GROUPS if k % 8 == 0 else ():  # each group alone fills its columns and nothing else
            part = shape_features(p, frozenset({g}))
            cols = [c for c in range(len(SHAPE_NAMES)) if shape_groups([c]) == {g}]
            assert np.array_equal(part[cols], full[cols]) and not np.delete(part, cols).any(), (g, p[:80])
        assert np.array_equal(choice_features(p), ref.choice_features(p)), p[:80]
        stem = parse_choices(p)[0]
        assert asks_exception(stem) == bool(ref._EXCEPTION.search(stem))


HANDMADE = ["Which is FALSE?\nA. 1\nB. 2", "All INCORRECT EXCEPT\nA. x\nB. y", "the LEAST and the NOT",
            "x² + ٣ = 1,000.5 and 1,1,1,1", "$$\\frac{1}{2}$$ percent 50% twice", "Statement 1 | a. Statement 2 | b.",
            "Consider:\nIV. x\nIV. y\n(A) I only\n(B) IV only", "Which?\nI. a\nII. b\nA. I and II\nB. II only",
            "", "?", "NOTHING FALSEHOOD", "\u0130stanbul \u212a 3.14 0.5"]


@pytest.mark.parametrize("text", HANDMADE)
def test_shape_and_choice_features_on_hand_made_prompts(text):
    assert np.array_equal(shape_features(text), ref.shape_features(text))
    assert np.array_equal(choice_features(text), ref.choice_features(text))
    assert np.array_equal(features.token_hashes(text), ref.token_hashes(text))


EXCEPTION_CASES = ["Which is NOT true?", "all EXCEPT", "It CANNOT be", "Which would not be correct?",
                   "Which would not be correct\n?", "this is not true", "He cannot go", "the least likely",
                   "is false", "Is Incorrect", "xnot true", "is  not?", "notexcept", "falsexcept", "cannot?",
                   "leaſt likely", "\u0130s false", "Not\u212a", "note that", "Were not?", "wasnot?", "EXCEPTIONAL",
                   "could not\n\n?", "a could not b?", "_except", "é except", "NOTé", "café not true"]


@pytest.mark.parametrize("stem", EXCEPTION_CASES)
def test_the_exception_shortcut_is_the_regex(stem):
    assert asks_exception(stem) == bool(ref._EXCEPTION.search(stem))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["not", "NOT", "Not", "except", "EXCEPT", "least", "likely", "LEAST", "false",
                                 "FALSE", "incorrect", "INCORRECT", "true", "is", "are", "would", "does", "do",
                                 "could", "was", "were", "can", "cannot", "CANNOT", " ", " ", "\n", "?", "x", "é",
                                 "ſ", "ı", "_", "-", "ne"]), max_size=14).map("".join))
def test_the_exception_shortcut_is_the_regex_on_word_salad(stem):
    assert asks_exception(stem) == bool(ref._EXCEPTION.search(stem))


def _decisions(scores: np.ndarray, reference: np.ndarray) -> list[np.ndarray]:
    """Strong (True) or weak for each prompt, at the thresholds that send each share of the reference scores."""
    return [scores >= np.quantile(reference, 1.0 - s) for s in SHARES]


@pytest.mark.parametrize("spec", ["transfer-lsa", "stack-lsa"])
def test_scores_and_decisions_are_the_reference_ones_on_real_prompts(prompts, routers, spec):
    r = routers[spec]
    reference = ref.transfer_score if spec == "transfer-lsa" else ref.stack_score
    want = np.array([reference(r, p) for p in prompts])
    got = []
    for p in prompts:
        features.token_hashes.cache_clear()
        got.append(r.score_text(p))
    got_a = np.array(got)
    assert np.abs(got_a - want).max() <= 1e-12
    assert all(np.array_equal(a, b) for a, b in zip(_decisions(got_a, want), _decisions(want, want), strict=True))
    assert len(set(np.round(want, 9))) > len(prompts) // 2  # the scores tell the prompts apart: a real comparison


def test_the_reference_tokeniser_is_the_one_the_regex_defines():
    """The C tokeniser reads `\\s` as str.isspace does: the same as `re` for every character."""
    chars = "".join(chr(c) for c in range(0x3000 + 1) if unicodedata.category(chr(c)) != "Cs")
    assert [c for c in chars if c.isspace()] == re.findall(r"\s", chars)
