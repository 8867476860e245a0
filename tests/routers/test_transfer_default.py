"""`transfer`, the transferred router the README and docs/routers.md recommend, carries the options' geometry since
session 27 (issue 22: `transfer-lsa-options` passed its confirmatory round and the in-domain and leave-one-benchmark-out
gates, bench/RESULTS.md, transfer8b): `-r transfer` resolves to the options router over `transfer`'s members, keeps
its sentence-embedding vectors for the training profile, and `transfer-lsa` stays selectable without the member."""

from __future__ import annotations

from tests.harness import unavailable
from tests.routers.test_option_geometry import SUBJECTS, data
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.dense import EmbeddingVectors
from tierwise.routers.features import embedding_available
from tierwise.routers.options import OptionGeometryRouter
from tierwise.routers.shift import router_embedding
from tierwise.routers.static_tokens import StaticTokenVectors
from tierwise.routers.transfer import TransferRouter

if not embedding_available():
    unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")


def test_transfer_resolves_to_the_options_router() -> None:
    r = make_router("transfer")
    assert isinstance(r, OptionGeometryRouter) and isinstance(r.vectors, StaticTokenVectors)
    assert isinstance(r.base, TransferRouter)
    assert isinstance(router_embedding(r), EmbeddingVectors)  # the training profile's embedding space is kept
    plain = make_router("transfer-lsa")
    assert isinstance(plain, TransferRouter) and router_embedding(plain) is None


def test_transfer_reads_the_options_and_loads_as_saved(tmp_path) -> None:
    train, unseen = data(SUBJECTS[:6]), data(SUBJECTS[6:], template=1)
    r = make_router("transfer").fit(train)
    assert r.used > 0  # the member is on: close options rank up in a subject and wording never trained on
    plain = make_router("transfer-lsa").fit(train)
    assert list(r.score(unseen)) != list(plain.score(unseen))
    back = load_router(save_router(r, tmp_path / "t"))
    assert isinstance(back, OptionGeometryRouter) and back.base.kind == "transfer"
    assert [round(back.score_text(p), 9) for p in unseen.prompts[:6]] == \
        [round(r.score_text(p), 9) for p in unseen.prompts[:6]]
