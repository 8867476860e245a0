"""Learned routers: text features, linear (and post-hoc) models, kNN, matrix factorisation,
ensembles, calibration to a strong-call share or budget, and persistence without pickle.

`make_router(spec)` builds an untrained router from a short spec such as `linear`,
`knn-lsa`, `knn-embedding`, `mf-embedding`, `stack`, `stack-lsa`, `posthoc` or `ensemble` (see ROUTER_SPECS).
"""

from __future__ import annotations

from typing import Any

from tierwise.routers.base import Router, RouterError, load_router, save_router, threshold_for_share

__all__ = ["ROUTER_SPECS", "Router", "RouterError", "load_builtin_kinds", "load_router", "make_router",
           "save_router", "threshold_for_share"]

ROUTER_SPECS = ("linear", "knn-lsa", "mf-lsa", "knn-embedding", "mf-embedding", "stack", "stack-lsa", "ensemble",
                "ensemble-embedding", "posthoc", "transfer", "transfer-lsa", "transfer-lsa-options",
                "transfer-lsa-options-minilm")


def load_builtin_kinds() -> None:
    """Import the router modules so their kinds register for `load_router`."""
    from tierwise.routers import ensemble, knn, linear, mf, options, stack, transfer  # noqa: F401


def make_router(spec: str, *, embedding_cache: Any = None, **kw: Any) -> Router:
    """`embedding_cache`: an `EmbeddingCache` (on disk) or a dict (prompt → vector) for embedding routers."""
    from tierwise.routers.ensemble import EnsembleRouter
    from tierwise.routers.knn import knn
    from tierwise.routers.linear import LinearRouter
    from tierwise.routers.mf import mf
    from tierwise.routers.stack import stack

    cache = embedding_cache
    if spec == "linear":
        return LinearRouter(**kw)
    if spec == "posthoc":
        return LinearRouter(answer=True, **kw)
    if spec in ("knn-lsa", "knn-embedding"):
        return knn(spec.split("-", 1)[1], cache, **kw)
    if spec in ("mf-lsa", "mf-embedding"):
        return mf(spec.split("-", 1)[1], cache, **kw)
    if spec in ("stack", "stack-lsa"):
        return stack("lsa" if spec == "stack-lsa" else "embedding", cache, **kw)
    if spec in ("transfer", "transfer-lsa-options", "transfer-lsa-options-minilm"):
        # transfer-lsa's members + the options' geometry (routers/options.py): static token vectors, or a MiniLM pass.
        # `transfer`, the recommended transferred router, is this since session 27 (issue 22's in-domain and
        # leave-one-benchmark-out gates: bench/RESULTS.md, transfer8b); its base keeps the sentence-embedding
        # vectors for the training profile. `transfer-lsa` stays the router without the member.
        from tierwise.routers.options import options
        from tierwise.routers.transfer import transfer

        base = transfer("embedding", cache, **kw) if spec == "transfer" else transfer("lsa", None, **kw)
        return options(base, cache, vectors="minilm" if spec.endswith("minilm") else "static")
    if spec == "transfer-lsa":
        from tierwise.routers.transfer import transfer

        return transfer("lsa", None, **kw)
    if spec == "ensemble":
        return EnsembleRouter([LinearRouter(), knn("lsa"), mf("lsa")])
    if spec == "ensemble-embedding":  # one vectors object for both members: each prompt is embedded once
        from tierwise.routers.dense import EmbeddingVectors
        from tierwise.routers.knn import KnnRouter
        from tierwise.routers.mf import MatrixFactorisationRouter

        shared = EmbeddingVectors(cache=cache if cache is not None else {})
        return EnsembleRouter([LinearRouter(), KnnRouter(shared), MatrixFactorisationRouter(shared)])
    raise RouterError(f"unknown router {spec!r}; choose one of: {', '.join(ROUTER_SPECS)}")
