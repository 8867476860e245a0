"""Placing whole clusters of scored traffic: a transferred router's batch scores pulled towards their cluster's mean.

On subjects a router never saw, its ranking *inside* a subject is as good as in-domain; what it loses is the
placement of whole subjects against each other (bench/RESULTS.md, "Transfer round 15"). One question's score places
its subject with one question's noise, the mean over a cluster of similar questions with less. When a batch of
traffic is scored at once (`tierwise eval`, offline replay), `place` clusters the batch by its own words (TF-IDF
fitted on the batch, `DIMS` LSA dimensions, k-means with k = round(n / `CLUSTER_SIZE`)) and adds `WEIGHT` × (the
cluster's mean score − the batch's mean score) to each score. A single request (the gateway's `learned` route) has
no batch: its score is unchanged. "window" is the form a route can do (routers/window.py, session 34): each score
placed by its nearest neighbours among the requests before it, the batch streamed in a seeded random arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

PLACEMENTS = ("none", "clusters", "window", "window-tokens")
# `tierwise eval`'s default: what a `learned` route does by default (policies/learned_config.PLACEMENT; round 17 passed
# its registered rule on P12, session 34). "clusters" passed round 15's rule but no gateway route can place a batch.
PLACEMENT = "window-tokens"
CLUSTER_SIZE = 200  # questions per cluster
DIMS = 64
WEIGHT = 1.0
# The routers whose batch scores are placed: the transferred ones (registered and measured on them only).
PLACED_SPECS = ("transfer", "transfer-lsa", "transfer-lsa-options", "transfer-lsa-options-minilm")
TOKEN_SPECS = ("transfer", "transfer-lsa-options")  # those whose router carries static token vectors


def traffic_clusters(prompts: Sequence[str], size: int = CLUSTER_SIZE, dims: int = DIMS, seed: int = 0) -> np.ndarray:
    """A cluster id per prompt: k-means (k = round(n / size), at least 1) on LSA of the prompts' own TF-IDF."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    k = max(1, round(len(prompts) / size))
    if k == 1:
        return np.zeros(len(prompts), int)
    try:
        x = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(list(prompts))
    except ValueError:  # no word occurs twice: nothing to cluster by
        return np.zeros(len(prompts), int)
    if x.shape[1] < 2:
        return np.zeros(len(prompts), int)
    z = TruncatedSVD(min(dims, x.shape[1] - 1), random_state=seed).fit_transform(x)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return np.asarray(KMeans(k, n_init=4, random_state=seed).fit_predict(z), int)


def placed(scores: np.ndarray, cluster: np.ndarray, weight: float = WEIGHT) -> np.ndarray:
    """`scores` plus `weight` times their cluster's mean less the overall mean."""
    s = np.asarray(scores, dtype=float)
    if len(s) == 0:
        return s
    means = np.zeros(int(cluster.max()) + 1)
    np.add.at(means, cluster, s)
    means /= np.maximum(np.bincount(cluster, minlength=len(means)), 1)
    return np.asarray(s + weight * (means[cluster] - s.mean()), dtype=float)


def place(scores: np.ndarray, prompts: Sequence[str], placement: str = PLACEMENT,
          encode: Callable[[Sequence[str]], np.ndarray] | None = None, seed: int = 0,
          verdicts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, bank: object = None,
          bank_weight: float = 0.0) -> np.ndarray:
    """A batch's scores placed by its clusters ("clusters"), by a window streamed over it in a random arrival order
    ("window", "window-tokens": `encode` gives the prompts' vectors, `window_encoder`'s), or as they are ("none").
    `verdicts` (strong outcomes, weak outcomes, which requests are judged): a windowed placement also averages the
    judged gains, as a route with online validation and `placement_judged` does (routers/window.judged_stream).
    `bank` (a saved router's training bank, routers/bank.py) with `bank_weight` > 0: "window-tokens" also adds the
    bank term, as a route with `placement_bank` does (routers/window.route_stream)."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}; got {placement!r}")
    if placement == "none" or len(scores) == 0:
        return np.asarray(scores, dtype=float)
    if placement in ("window", "window-tokens"):
        from tierwise.routers.window import stream_placed

        if encode is None:
            raise ValueError(f"placement {placement!r} needs the prompts' vectors: the router's training profile "
                             "(window) or its static token vectors (window-tokens)")
        if bank is not None and bank_weight > 0 and placement == "window-tokens":
            from tierwise.routers.window import route_stream

            return route_stream(np.asarray(scores, dtype=float), encode(prompts), seed, bank, bank_weight, verdicts)
        if verdicts is not None:
            from tierwise.routers.window import judged_stream

            return judged_stream(np.asarray(scores, dtype=float), encode(prompts), *verdicts, seed=seed)
        return stream_placed(np.asarray(scores, dtype=float), encode(prompts), seed)
    return placed(scores, traffic_clusters(prompts))


def window_encoder(placement: str, router: object = None, train_prompts: Sequence[str] | None = None,
                   spec: str | None = None) -> Callable[[Sequence[str]], np.ndarray] | None:
    """What a windowed placement reads prompts by, as a route with the same router would: for "window" the training
    profile's LSA (`profile_encoder`); for "window-tokens" a saved router's static token vectors, or (a CV fold of
    `spec`) the ones its options member fits on `train_prompts` (the same table, weights from the training questions'
    options: what the fitted router holds). None where the route would not place (none of either; `spec` a router
    without them)."""
    if placement == "window":
        return profile_encoder(router, train_prompts)
    if placement != "window-tokens":
        return None
    from tierwise.routers.window import token_vectors

    if router is not None:
        v = token_vectors(router)
        return None if v is None else v.encode
    if train_prompts is None or spec not in TOKEN_SPECS:
        return None
    from tierwise.routers.options import verbal_options
    from tierwise.routers.static_tokens import StaticTokenVectors

    return StaticTokenVectors().fit([o for p in train_prompts for o in verbal_options(p)]).encode


def profile_encoder(router: object = None, train_prompts: Sequence[str] | None = None
                    ) -> Callable[[Sequence[str]], np.ndarray] | None:
    """What a windowed placement reads prompts by: a saved router's training-profile LSA, or (a CV fold) the LSA a
    training profile of `train_prompts` would hold (what `--save` would store); None without either."""
    from tierwise.routers.shift import TrainingProfile

    profile = getattr(router, "profile", None)
    if profile is None and train_prompts is not None:
        profile = TrainingProfile.fit(train_prompts)
    return None if profile is None else profile.lsa.encode


def places(kind_or_spec: str, base_kind: str | None = None) -> bool:
    """Whether a router (a spec of `make_router`, or a saved router's kind and its base's kind) is one whose batch
    scores are placed."""
    if kind_or_spec == "options":
        return base_kind == "transfer"
    return kind_or_spec in PLACED_SPECS
