"""The shipped verifier: it tells reworded questions from different ones, its score does not depend
on which question was cached, and the loader takes nothing but a well-formed file of numbers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.harness import unavailable

if importlib.util.find_spec("sentence_transformers") is None:
    unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")

from tierwise.cache.pair_model import MODEL_FILE, PairModel  # noqa: E402

SAME = [("How do I learn Python?", "What is the best way to learn Python?"),
        ("What is the capital of France?", "What's the capital of France?"),
        ("How can I lose weight fast?", "What is the fastest way to lose weight?"),
        ("Who will win the 2016 US presidential election?", "Who do you think will win the 2016 US election?")]
DIFFERENT = [("How do I learn Python?", "How do I learn Java?"),
             ("What is the capital of France?", "What is the capital of Germany?"),
             ("How can I lose weight fast?", "How can I gain weight fast?"),
             ("What is the best phone under 10000?", "What is the best phone under 20000?")]


@pytest.fixture(scope="module")
def embedder():
    from tierwise.cache.semantic import TokenEmbedder

    return TokenEmbedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def shipped():
    return PairModel.load()


def probs(model: PairModel, embedder, pairs: list[tuple[str, str]]) -> np.ndarray:
    ea, ta = zip(*[embedder.encode_one(a) for a, _ in pairs], strict=True)
    eb, tb = zip(*[embedder.encode_one(b) for _, b in pairs], strict=True)
    return model.prob([a for a, _ in pairs], [b for _, b in pairs], np.stack(ea), np.stack(eb), list(ta), list(tb))


def test_shipped_model_separates_rewordings_from_different_questions(shipped, embedder):
    same, different = probs(shipped, embedder, SAME), probs(shipped, embedder, DIFFERENT)
    assert same.min() > different.max(), (same, different)
    assert (different < shipped.threshold(0.05)).all()  # not served even at the loosest operating point


def test_score_does_not_depend_on_which_question_was_cached(shipped, embedder):
    forward = probs(shipped, embedder, SAME + DIFFERENT)
    backward = probs(shipped, embedder, [(b, a) for a, b in SAME + DIFFERENT])
    assert np.allclose(forward, backward, atol=1e-4)


def test_shipped_file_is_small_and_plain_numbers():
    assert MODEL_FILE.stat().st_size <= 2 * 1024 * 1024
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        assert all(z[k].dtype.kind in "fi" for k in z.files)


def test_loader_rejects_malformed_files(tmp_path):
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        good = {k: z[k] for k in z.files}
    assert PairModel(good).thresholds == PairModel.load().thresholds

    def rejected(arrays: dict, match: str) -> None:
        path = tmp_path / "m.npz"
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=match):
            PairModel.load(path)

    rejected({**good, "format": np.array(3)}, "not a verifier model of this version")
    rejected({k: v for k, v in good.items() if k != "format"}, "not a verifier model of this version")
    rejected({k: v for k, v in good.items() if k != "w_hid"}, "'w_hid'")
    rejected({**good, "w_proj": good["w_proj"][:, :10]}, "'w_proj'")
    rejected({**good, "idf": good["idf"][:100]}, "'idf'")
    rejected({**good, "thr": good["thr"][:2]}, "'thr'")
    rejected({**good, "w_att": good["w_att"][0]}, "matrices")
    nan = good["w_out"].copy()
    nan[0, 0] = np.nan
    rejected({**good, "w_out": nan}, "'w_out'")
    rejected({**good, "b_out": np.array(["x"])}, "'b_out'")
    pickled = tmp_path / "p.npz"
    np.savez(pickled, **{**good, "b_out": np.array([object()], dtype=object)})
    with pytest.raises(ValueError):  # object arrays need pickle: refused
        PairModel.load(pickled)
    big = tmp_path / "big.npz"
    big.write_bytes(b"\0" * (17 * 1024 * 1024))
    with pytest.raises(ValueError, match="larger than"):
        PairModel.load(big)
