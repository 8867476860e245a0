"""Routers learn the fixture's hard/easy split, survive save/load exactly, and calibrate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.harness import unavailable
from tests.routers.saved import saved_before
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import RouterError, load_router, make_router, save_router
from tierwise.routers.base import share_for_budget, threshold_for_share
from tierwise.routers.features import HashingTfidf, embedding_available

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
SPECS = ["linear", "knn-lsa", "mf-lsa", "ensemble", "posthoc", "transfer-lsa"]


@pytest.fixture(scope="module")
def data():
    return load_jsonl(FIXTURE)


@pytest.mark.parametrize("spec", SPECS)
def test_router_ranks_hard_above_easy_and_round_trips(spec, data, tmp_path):
    r = make_router(spec).fit(data)
    s = r.score(data)
    hard = np.array([x == "proof" for x in data.subjects])
    assert s[hard].mean() > s[~hard].mean()
    path = save_router(r, tmp_path / "router")
    assert json.loads(path.read_text())["kind"] == r.kind
    r2 = load_router(path)
    np.testing.assert_allclose(r2.score(data), s, rtol=1e-2, atol=1e-3)  # weights stored as float16 in places
    answer = data.weak_responses[0] if spec == "posthoc" else None
    assert r2.score_text(data.prompts[0], answer) == pytest.approx(s[0], rel=1e-2, abs=1e-3)
    assert r2.train_quantiles is not None


def test_no_pickle_in_saved_files(data, tmp_path):
    path = save_router(make_router("linear").fit(data), tmp_path / "r")
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(RouterError, match="not found"):
        load_router(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(RouterError, match="not a router file"):
        load_router(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"format": "tierwise-router", "version": 1, "kind": "magic"}))
    with pytest.raises(RouterError, match="unknown router kind"):
        load_router(tmp_path / "y.json")
    with pytest.raises(RouterError, match="unknown router"):
        make_router("bogus")


def test_versioned_names_do_not_overwrite_each_other_and_corrupt_weights_are_a_clear_error(data, tmp_path):
    v1 = save_router(make_router("linear").fit(data), tmp_path / "router.v1")
    v2 = save_router(make_router("knn-lsa").fit(data), tmp_path / "router.v2")
    assert v1.name == "router.v1.json" and v2.name == "router.v2.json"
    assert load_router(tmp_path / "router.v1").kind == "linear" and load_router(v2).kind != "linear"
    (tmp_path / "router.v1.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RouterError, match="unreadable router weights"):
        load_router(v1)


def test_calibration_to_share_and_budget(data):
    r = make_router("linear").fit(data)
    s = r.score(data)
    for share in (0.1, 0.5, 0.9):
        t = threshold_for_share(r.train_quantiles, share)
        assert np.mean(s >= t) == pytest.approx(share, abs=0.1)
    assert share_for_budget(5.0, strong_per_query=0.01, weak_per_query=0.0) == pytest.approx(0.5)
    assert share_for_budget(100.0, 0.01, 0.0) == 1.0 and share_for_budget(0.0, 0.01, 0.001) == 0.0
    with pytest.raises(ValueError):
        threshold_for_share(r.train_quantiles, 1.5)


def test_hashing_is_stable_and_normalised():
    f = HashingTfidf(1 << 10)
    idx, val = f.row("Prove it, prove it 42")
    idx2, val2 = HashingTfidf(1 << 10).row("Prove it, prove it 42")
    assert idx.tolist() == idx2.tolist() and np.dot(val, val) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError):
        HashingTfidf(1000)


@pytest.mark.parametrize("text", ["", "abc", "What is 2+2?", "x" * 5000, "Prove it.\nA. 3\nB. 4",
                                  "Ünïcödé — straße ✓ 中文 question", "tab\tand  spaces\n\n\u00a0end"])
def test_token_hashes_are_crc32_of_every_token(text):
    """The vectorised 4-gram hashing gives exactly zlib's CRC32 of each token, so saved routers keep their buckets."""
    import zlib

    from tierwise.routers.features import _tokens, token_hashes

    want = [zlib.crc32(t.encode()) for t in _tokens(text)]
    assert token_hashes(text).tolist() == want


def test_posthoc_needs_answers(data):
    with pytest.raises(ValueError, match="weak model's answers"):
        make_router("posthoc").fit(data.take(range(10)).__class__(
            "x", data.prompts[:10], data.strong[:10], data.weak[:10], data.groups[:10]))


def test_embedding_knn_learns_the_split(data, tmp_path):
    if not embedding_available():
        unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")
    r = make_router("knn-embedding").fit(data)
    s = r.score(data)
    hard = np.array([x == "proof" for x in data.subjects])
    assert s[hard].mean() > s[~hard].mean()
    r2 = load_router(save_router(r, tmp_path / "e"))
    assert r2.score_text(data.prompts[3]) == pytest.approx(s[3], abs=1e-2)


def test_transfer_router_weighs_sources_by_root_size_centres_the_gain_and_averages_ranks(data, tmp_path):
    from tierwise.evaluation.dataset import concat
    from tierwise.routers.transfer import balanced_weights, centred_within, source_weights, sources

    a, b = data.take(range(0, 48, 2), "a"), data.take(range(1, 48, 2), "b")
    both = concat([a, b.take(range(6), "b")], "a+b")
    src = sources(both)
    assert sorted(set(src)) == ["a", "b"]
    w = balanced_weights(src)
    assert w[:24].sum() == pytest.approx(w[24:].sum())  # 24 and 6 queries: each source counts the same
    w = source_weights(src)  # the default: a source weighs in proportion to the square root of its size
    assert w[:24].sum() / w[24:].sum() == pytest.approx(2.0)
    g = centred_within(both.gain, src)
    assert g[:24].mean() == pytest.approx(0.0, abs=1e-12) and g[24:].mean() == pytest.approx(0.0, abs=1e-12)
    r = make_router("transfer-lsa").fit(both)
    assert r.members == ("tfidf-logit-wf", "tfidf-ridge-gain", "shape-ridge-gain")
    assert r.rank_grid is not None and r.rank_grid.shape[0] == 3
    s = r.score(data)
    assert s.min() >= -0.01 and s.max() <= 1.01  # a mean of ranks
    hard = np.array([x == "proof" for x in data.subjects])
    assert s[hard].mean() > s[~hard].mean()
    path = save_router(r, tmp_path / "t")
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        assert "lsa_components" not in z.files  # no kNN member: its vectors are not saved
    r2 = load_router(path)
    np.testing.assert_allclose(r2.score(data), s, rtol=1e-2, atol=1e-3)
    assert r2.score_text(data.prompts[5]) == pytest.approx(s[5], abs=1e-3)


def test_transfer_router_with_every_member_round_trips(data, tmp_path):
    from tierwise.routers.transfer import KNOWN

    r = make_router("transfer-lsa", members=KNOWN).fit(data)
    s = r.score(data)
    hard = np.array([x == "proof" for x in data.subjects])
    assert s[hard].mean() > s[~hard].mean()
    r2 = load_router(save_router(r, tmp_path / "all"))
    np.testing.assert_allclose(r2.score(data), s, rtol=1e-2, atol=1e-3)
    assert r2.score_text(data.prompts[2]) == pytest.approx(s[2], abs=1e-3)


def test_transfer_router_reads_no_length_count_by_default_and_old_routers_keep_theirs(data, tmp_path):
    from tierwise.routers.transfer import SHAPE

    with pytest.raises(ValueError, match="shape counts"):
        make_router("transfer-lsa", shape=("words", "letters"))
    r = make_router("transfer-lsa", members=("shape-ridge-gain",)).fit(data)
    kept = r.shape
    assert not {"words", "sentences", "words_per_sentence"} & set(kept)
    assert len(r.shape_coef) == len(kept) + 1
    long_ = data.prompts[0] + " and some more words" * 40
    assert r.score_text(long_) == pytest.approx(r.score_text(data.prompts[0]), abs=1e-6)  # length is not read
    r2 = load_router(save_router(r, tmp_path / "s"))
    assert r2.shape == kept
    np.testing.assert_allclose(r2.score(data), r.score(data), rtol=1e-6, atol=1e-6)
    # A router saved before the option (no "shape" in its settings) read all eleven counts, and still does.
    old = make_router("transfer-lsa", members=("shape-ridge-gain",), shape=SHAPE).fit(data)
    r3 = saved_before(old, tmp_path / "old", data, "shape")
    assert r3.shape == SHAPE
