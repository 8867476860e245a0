"""`transfer-lsa-options` (routers/options.py, issue 22 session 26; static token vectors since session 27): the
options' geometry in a sentence-embedding space blended into `transfer-lsa` — close verbal options rank a question
up in a subject never trained on, numeric options stay neutral, the member switches itself off when it leads nothing, and a saved router scores
the same after loading."""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness import unavailable
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.features import embedding_available
from tierwise.routers.options import OptionGeometryRouter, geometry, verbal_options

if not embedding_available():
    unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")

# Every option names {w}, the close and far sets share as few other words, so the options' word overlap (a count
# transfer-lsa already reads) does not tell them apart; only their meaning does.
CLOSE = (("the {w} sat on the mat", "a {w} was sitting on a rug", "one {w} rested upon carpet",
          "that {w} stayed seated atop matting"),
         ("prices of {w} rose sharply", "cost for {w} went up much", "buying {w} became expensive",
          "{w} got steeply dearer"))
FAR = (("the {w} sat on the mat", "photosynthesis in a {w}", "one {w} in revolutionary France",
        "that {w} under ocean tides"),
       ("prices of {w} rose sharply", "prime numbers for {w}", "chess openings with {w}",
        "{w} near volcanic Iceland"))
SUBJECTS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta")
NOUNS = ("cat", "dog", "bird", "horse", "coffee", "bread", "rice", "steel", "fish", "tea", "wool", "salt")


def prompt(subject: str, i: int, options: list[str]) -> str:
    stem = f"In {subject}, which statement is meant?"  # no number: its parity would tell close from far
    return stem + "\n" + "\n".join(f"{'ABCD'[k]}. {o}" for k, o in enumerate(options)) + "\nAnswer:"


def data(subjects: tuple[str, ...], template: int = 0) -> OutcomeDataset:
    """Close options: the weak model fails and the strong one is right (gain 1); far options: both right. The stems say
    nothing; `template` picks the wording of the options,
    so a router trained on one wording meets words it never saw in the other: only the geometry carries over."""
    prompts, strong, weak, subj = [], [], [], []
    for s in subjects:
        for i in range(24):
            close = i % 2 == 0
            w = NOUNS[i // 2 % len(NOUNS)] + f" {s}"  # each noun once close, once far
            opts = [o.format(w=w) for o in (CLOSE if close else FAR)[template]]
            prompts.append(prompt(s, i, opts))
            hard = close
            strong.append(1.0)
            weak.append(0.0 if hard else 1.0)
            subj.append(s)
    return OutcomeDataset(name="mc", prompts=prompts, strong=np.array(strong), weak=np.array(weak),
                          groups=[str(i) for i in range(len(prompts))], subjects=subj)


@pytest.fixture(scope="module")
def fitted() -> OptionGeometryRouter:
    r = make_router("transfer-lsa-options")
    assert isinstance(r, OptionGeometryRouter)
    return r.fit(data(SUBJECTS[:6]))


def auc(scores: np.ndarray, hard: np.ndarray) -> float:
    pos, neg = scores[hard], scores[~hard]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_close_options_rank_up_in_an_unseen_subject(fitted: OptionGeometryRouter) -> None:
    unseen = data(SUBJECTS[6:], template=1)
    hard = np.asarray(unseen.weak) == 0
    assert fitted.used == pytest.approx(0.25)
    member = fitted._member(*fitted._counts(unseen.prompts))
    assert auc(member, hard) > 0.9  # words never seen in training: only the options' meaning carries over
    assert np.allclose(fitted.score(unseen), 0.75 * np.asarray(fitted.base.score(unseen)) + 0.25 * member)


def test_numeric_options_are_neutral(fitted: OptionGeometryRouter) -> None:
    numeric = prompt("theta", 1, ["12.5", "13.0", "14.25", "15.75"])
    assert verbal_options(numeric) == []
    base = fitted.base.score_text(numeric)
    assert fitted.score_text(numeric) == pytest.approx(0.75 * base + 0.25 * 0.5)
    assert fitted.score_text("What is 2 + 2?") == pytest.approx(0.75 * fitted.base.score_text("What is 2 + 2?")
                                                               + 0.125)


def test_member_off_without_options_in_training() -> None:
    plain = data(SUBJECTS[:6])
    plain = OutcomeDataset(name="plain", prompts=[p.split("\nA.")[0] + f" Word {i}." for i, p in enumerate(plain.prompts)],
                           strong=plain.strong, weak=plain.weak, groups=plain.groups, subjects=plain.subjects)
    r = make_router("transfer-lsa-options").fit(plain)
    d = data(SUBJECTS[6:], template=1)
    assert r.used == 0.0
    assert np.allclose(r.score(d), r.base.score(d))


def test_saved_router_scores_the_same(fitted: OptionGeometryRouter, tmp_path) -> None:
    unseen = data(SUBJECTS[6:])
    save_router(fitted, tmp_path / "r")
    back = load_router(tmp_path / "r")
    assert back.kind == "options"
    for p in unseen.prompts[:6]:
        assert back.score_text(p) == pytest.approx(fitted.score_text(p), abs=1e-6)


def test_geometry_counts() -> None:
    v = np.eye(3)
    assert np.allclose(geometry(v), [0.0, 0.0, 0.0])
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert np.allclose(geometry(v)[:2], [1 / 3, 2 / 3])


def test_requests_leave_the_training_cache_alone() -> None:
    r = make_router("transfer-lsa-options-minilm").fit(data(SUBJECTS[:6]))  # the MiniLM pass per request
    assert isinstance(r, OptionGeometryRouter)
    before = len(r.vectors.cache)
    for i in range(5):
        r.score_text(prompt("omega", i, [f"fresh option {i} {k}" for k in "abcd"]))
    assert len(r.vectors.cache) == before
