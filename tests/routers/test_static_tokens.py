"""Static token vectors for the options' geometry (routers/static_tokens.py, issue 22 session 27): the default
`transfer-lsa-options` scores a request without running the transformer (before, every request ran a MiniLM pass
over its options), texts are bounded before tokenising, and a saved table that does not fit is refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness import unavailable
from tierwise.routers import RouterError, load_router, make_router, save_router
from tierwise.routers.features import Embedder, embedding_available
from tierwise.routers.static_tokens import MAX_CHARS, StaticTokenVectors, distilled_table

if not embedding_available():
    unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")

from tests.routers.test_option_geometry import SUBJECTS, data, prompt  # noqa: E402


@pytest.fixture(scope="module")
def vectors() -> StaticTokenVectors:
    return StaticTokenVectors().fit(["the cat sat on the mat", "a rise in demand", "the French revolution"])


def test_a_paraphrase_is_closer_than_an_unrelated_option(vectors: StaticTokenVectors) -> None:
    x = vectors.encode(["a rise in demand", "an increase in consumption", "photosynthesis in green plants"])
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.1


def test_the_table_is_centred() -> None:
    # uncentred, every row shares one large direction and any two options look alike
    t = distilled_table().astype(np.float32)
    assert np.linalg.norm(t.mean(axis=0)) < 0.05 * np.linalg.norm(t, axis=1).mean()


def test_requests_run_no_transformer(tmp_path, monkeypatch) -> None:
    r = make_router("transfer-lsa-options").fit(data(SUBJECTS[:6]))
    assert r.used == pytest.approx(0.25)
    unseen = data(SUBJECTS[6:], template=1)
    want = [r.score_text(p) for p in unseen.prompts[:6]]
    save_router(r, tmp_path / "r")

    def no_model(self: Embedder) -> None:
        raise AssertionError("the sentence-embedding model was loaded on the request path")

    monkeypatch.setattr(Embedder, "_load", no_model)
    back = load_router(tmp_path / "r")
    got = [back.score_text(p) for p in unseen.prompts[:6]]
    assert got == pytest.approx(want, abs=1e-6)
    member = back._member(*back._counts(unseen.prompts))
    assert len(set(np.round(member, 6))) > 1  # the member reads the options (not the neutral 0.5 everywhere)


def test_long_texts_are_cut_before_tokenising(vectors: StaticTokenVectors) -> None:
    long = "word " * 200_000
    assert np.allclose(vectors.encode([long]), vectors.encode([long[:MAX_CHARS]]))
    assert np.allclose(vectors.encode([""]), 0.0)  # no token: a zero vector, no error


def test_a_table_that_does_not_fit_is_refused(saved_arrays) -> None:
    d, arrays = saved_arrays
    np.savez(d / "short.npz", **{**arrays, "vectors/weight": arrays["vectors/weight"][:10]})
    (d / "short.json").write_text((d / "r.json").read_text())
    with pytest.raises(RouterError, match="incomplete router"):
        load_router(d / "short")


def test_a_short_table_skips_unknown_tokens(vectors: StaticTokenVectors) -> None:
    short = StaticTokenVectors.restore(vectors.meta(), {"table": vectors.arrays()["table"][:1000],
                                                       "weight": vectors.arrays()["weight"][:1000]})
    assert short.encode([prompt("omega", 0, ["zebra crossing", "quantum"])]).shape == (1, 384)


@pytest.fixture(scope="module")
def saved_arrays(tmp_path_factory) -> tuple:
    d = tmp_path_factory.mktemp("hostile")
    r = make_router("transfer-lsa-options").fit(data(SUBJECTS[:6]))
    save_router(r, d / "r")
    with np.load(d / "r.npz") as z:
        return d, dict(z)


def _nan(t: np.ndarray) -> np.ndarray:
    t = t.copy()
    t[:] = np.nan
    return t


def _beyond_float16(t: np.ndarray) -> np.ndarray:
    t = t.astype(np.float64)
    t[:, 0] = 1e6
    return t


@pytest.mark.parametrize("change", [
    {"vectors/table": _nan},  # loaded before: every option NaN, the member's quantile its top (score 0.50 -> 0.75)
    {"vectors/table": _beyond_float16},  # inf after the cast to float16
    {"vectors/weight": lambda w: np.full_like(w, np.inf)},
    {"vectors/weight": lambda w: -w},
    {"vectors/table": lambda t: t.astype(np.complex64)},  # the imaginary part was dropped with a warning
    {"vectors/table": lambda t: np.ascontiguousarray(t[:, :2])},  # a narrow table changed the geometry
    {"vectors/table": lambda t: t[:0], "vectors/weight": lambda w: w[:0]},  # no token at all
], ids=["nan", "inf-after-cast", "inf-weight", "negative-weight", "complex", "narrow", "empty"])
def test_a_hostile_table_is_refused_with_a_clear_error(saved_arrays, change) -> None:
    d, arrays = saved_arrays
    hostile = {k: (change[k](v) if k in change else v) for k, v in arrays.items()}
    np.savez(d / "h.npz", **hostile)  # uncompressed: 7 tables of 23 MB, ~2 s each to compress
    (d / "h.json").write_text((d / "r.json").read_text())
    with pytest.raises(RouterError, match="incomplete router .*static token vectors"):
        load_router(d / "h")


def test_a_saved_table_names_no_other_tokenizer(vectors: StaticTokenVectors) -> None:
    """The saved model name is read as a local path: a router file must not pick which tokenizer.json is read."""
    with pytest.raises(ValueError, match="distilled from"):
        StaticTokenVectors.restore({**vectors.meta(), "model": "/tmp"}, vectors.arrays())


def test_the_tokenizer_is_loaded_with_the_table(vectors: StaticTokenVectors, monkeypatch) -> None:
    """A missing model fails the load (the route's start), not every request afterwards."""
    import tierwise.routers.static_tokens as st
    from tierwise.routers.features import MissingExtra

    monkeypatch.setattr(st, "_local_model_path", lambda name: "/nonexistent-model-dir")
    with pytest.raises(MissingExtra):
        StaticTokenVectors.restore(vectors.meta(), vectors.arrays())


def test_the_table_is_distilled_once_per_machine_and_a_bad_cache_file_is_distilled_again(tmp_path, monkeypatch) -> None:
    """The table is a pure function of the model's files: kept on disk, so a new process (an `eval`, a test worker)
    does not pay the ~30 s again; a cache file that is not a table (NaN, wrong shape) is ignored and rewritten."""
    import tierwise.routers.static_tokens as st

    monkeypatch.setenv("TIERWISE_CACHE_DIR", str(tmp_path))
    path = st._cache_path(st.DEFAULT_EMBEDDING_MODEL)
    assert path is not None and str(path).startswith(str(tmp_path))
    cached = np.full((10, st.DIMS), 0.5, np.float16)
    st._write_cached(path, cached)
    distilled: list[str] = []

    def distil(model: str) -> np.ndarray:
        distilled.append(model)
        return np.zeros((12, st.DIMS), np.float16)

    monkeypatch.setattr(st, "_distil", distil)
    st._table.cache_clear()
    try:
        assert np.array_equal(st.distilled_table(), cached) and distilled == []
        st._table.cache_clear()
        bad = cached.copy()
        bad[3, 7] = np.nan
        st._write_cached(path, bad)
        assert st.distilled_table().shape == (12, st.DIMS) and len(distilled) == 1
        assert np.load(path).shape == (12, st.DIMS)  # rewritten
    finally:
        st._table.cache_clear()
