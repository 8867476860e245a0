"""The `transfer` router's labels smoothed over neighbours of other subjects (`smooth=`, issue 22, session 23):
which queries are neighbours, which labels move, and that the option is saved and restored."""

from __future__ import annotations

import numpy as np
import pytest

from tests.routers.test_transfer_options import mc_data
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.transfer import _smoothed


def test_a_label_moves_towards_its_nearest_queries_of_other_subjects_only():
    e = np.eye(4, dtype=np.float32)
    # source "a": subjects x (rows 0, 1) and y (rows 2, 3); row 0's twin in x (row 1) disagrees with it, its twin in y
    # (row 2) agrees with row 3's label; source "b" has one subject and keeps its labels.
    vec = np.stack([e[0], e[0], e[0], e[1], e[2], e[2]])
    src = np.array(["a", "a", "a", "a", "b", "b"])
    subjects = ["x", "x", "y", "y", "only", "only"]
    y = np.array([[1.0, 0.4], [0.0, -0.2], [0.0, 0.6], [1.0, 0.0], [1.0, 0.3], [0.0, -0.3]])
    out = _smoothed(y, vec, src, subjects, 0.5)
    # row 0: its nearest other-subject query is row 2 (cosine 1; row 3 at cosine 0 weighs e^-20); row 1 never counts
    np.testing.assert_allclose(out[0], 0.5 * y[0] + 0.5 * y[2], atol=1e-6)
    np.testing.assert_allclose(out[2], 0.5 * y[2] + 0.5 * (y[0] + y[1]) / 2, atol=1e-6)  # two equally near in x
    np.testing.assert_allclose(out[4:], y[4:])  # a source with one subject: nothing to borrow from
    np.testing.assert_allclose(_smoothed(y, vec, src, subjects, 0.0), y)
    np.testing.assert_allclose(_smoothed(y, vec, src, subjects, 1.0)[0], y[2], atol=1e-6)


def test_within_subject_smoothing_keeps_each_subjects_mean():
    e = np.eye(2, dtype=np.float32)
    vec = np.stack([e[0], e[1], e[0], e[1]])
    src = np.array(["a"] * 4)
    subjects = ["x", "x", "y", "y"]
    y = np.array([[1.0], [0.0], [0.6], [0.4]])  # x: mean 0.5, deviations ±0.5; y: mean 0.5, deviations ±0.1
    out = _smoothed(y, vec, src, subjects, 0.5, within=True)
    np.testing.assert_allclose(out[:, 0], [0.5 + 0.25 + 0.05, 0.5 - 0.25 - 0.05, 0.5 + 0.05 + 0.25,
                                            0.5 - 0.05 - 0.25], atol=1e-6)
    y2 = y + np.array([[0.0], [0.0], [0.3], [0.3]])  # subject y harder by 0.3: it keeps that, whatever x shows
    out2 = _smoothed(y2, vec, src, subjects, 0.5, within=True)
    assert out2[2:].mean() - out2[:2].mean() == pytest.approx(0.3)
    assert _smoothed(y2, vec, src, subjects, 0.5)[2:].mean() - _smoothed(y2, vec, src, subjects, 0.5)[:2].mean() \
        == pytest.approx(0.0, abs=1e-6)  # smoothing the whole label gives the subjects each other's means


def test_smoothing_changes_the_fit_not_the_request_path_and_is_saved(tmp_path):
    d = mc_data()
    plain = make_router("transfer-lsa").fit(d)
    smooth = make_router("transfer-lsa", smooth=0.5).fit(d)
    assert plain.smooth == 0.0 and smooth.smooth == 0.5
    assert not np.allclose(plain.logit, smooth.logit)  # the members learnt from other labels
    s = smooth.score(d)
    assert np.allclose(s[:20], [smooth.score_text(p) for p in d.prompts[:20]], atol=1e-6)
    r2 = load_router(save_router(smooth, tmp_path / "r"))
    assert r2.smooth == 0.5 and not r2.smooth_within
    within = make_router("transfer-lsa", smooth=0.5, smooth_within=True).fit(d)
    assert load_router(save_router(within, tmp_path / "w")).smooth_within
    np.testing.assert_allclose(r2.score(d), s, atol=1e-5)
    with pytest.raises(ValueError, match="smooth"):
        make_router("transfer-lsa", smooth=1.5)
