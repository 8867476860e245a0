"""What a router is, how it is saved and loaded (JSON + .npz, never pickle), and calibration.

A router maps a prompt to a score; higher means "send to the strong model". Every router
keeps the quantiles of its scores on its training prompts, so a threshold can be chosen at
load time from a target strong-call share or a budget, without the training data.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tierwise.bounded_npz import TooLarge, load_npz
from tierwise.evaluation.dataset import OutcomeDataset

FORMAT_VERSION = 1
# A saved router's weights: at most this much on disk, and this much once decompressed (the largest
# routers, k-NN over embedded training prompts, take tens of MB); checked before any array is read.
MAX_WEIGHTS_FILE_BYTES = 256 * 2**20
MAX_WEIGHTS_ARRAY_BYTES = 1024 * 2**20
MAX_ROUTER_JSON_BYTES = 64 * 2**20
# Sizes a router's JSON declares and restoring allocates from (4 bytes a cell): `n_buckets` (a hashed TF-IDF's IDF,
# a linear router's weights) and, with it, `dims` (an LSA's components, n_buckets × dims).
_DECLARED_SIZES = ("n_buckets", "dims")
QUANTILE_POINTS = np.linspace(0.0, 1.0, 201)


class RouterError(ValueError):
    """A router file that is missing, malformed or of an unknown kind; the message names the file."""


class Router(Protocol):
    kind: str
    train_quantiles: np.ndarray | None

    def fit(self, data: OutcomeDataset) -> Router: ...

    def score(self, data: OutcomeDataset) -> np.ndarray:
        """Scores for every query of a dataset (batch path: evaluation, calibration)."""
        ...

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        """The score of one request (request path: must be fast and numpy-only)."""
        ...

    def meta(self) -> dict[str, Any]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


Restorer = Callable[[dict[str, Any], dict[str, np.ndarray]], Router]
ROUTER_KINDS: dict[str, Restorer] = {}


def register_kind(kind: str, restore: Restorer) -> None:
    ROUTER_KINDS[kind] = restore


def remember_quantiles(router: Router, scores: np.ndarray) -> None:
    router.train_quantiles = np.quantile(np.asarray(scores, dtype=float), QUANTILE_POINTS)


def threshold_for_share(quantiles: np.ndarray, share: float) -> float:
    """The threshold that sends about `share` of traffic (like the training prompts) to the strong model."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("target strong share must be between 0 and 1")
    return float(np.interp(1.0 - share, QUANTILE_POINTS, quantiles))


def share_for_budget(budget_per_1k: float, strong_per_query: float, weak_per_query: float) -> float:
    """The strong-call share a budget (USD per 1,000 queries) affords, given each tier's cost per query."""
    span = strong_per_query - weak_per_query
    if span <= 0:
        return 1.0
    return float(np.clip((budget_per_1k / 1000.0 - weak_per_query) / span, 0.0, 1.0))


def _paths(path: str | Path) -> tuple[Path, Path]:
    """`x.json`/`x.npz` for `x`, `x.json` or `x.npz`; any other dot stays part of the name (`router.v2`)."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".json", ".npz") else p
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def save_router(router: Router, path: str | Path) -> Path:
    """Write `<path>.json` (kind, settings, calibration) and `<path>.npz` (weights); returns the JSON path."""
    jpath, npath = _paths(path)
    jpath.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(router.arrays())
    if router.train_quantiles is not None:
        arrays["__train_quantiles"] = np.asarray(router.train_quantiles, dtype=float)
    meta = {"format": "tierwise-router", "version": FORMAT_VERSION, "kind": router.kind, **router.meta()}
    profile = getattr(router, "profile", None)
    if profile is not None:  # the training distribution, for shift detection (routers/shift.py)
        meta["profile"] = profile.meta()
        arrays.update({f"__profile/{k}": v for k, v in profile.arrays().items()})
    np.savez_compressed(npath, **arrays)  # type: ignore[arg-type]  # numpy stubs read ** as allow_pickle
    jpath.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    return jpath


def load_router(path: str | Path) -> Router:
    from tierwise.routers import load_builtin_kinds

    load_builtin_kinds()
    jpath, npath = _paths(path)
    try:
        too_large = jpath.stat().st_size > MAX_ROUTER_JSON_BYTES
        meta = None if too_large else json.loads(jpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RouterError(f"router file not found: {jpath}") from None
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RouterError(f"{jpath}: not a router file ({e})") from None
    except RecursionError:
        raise RouterError(f"{jpath}: not a router file (nested too deep)") from None
    if too_large:
        raise RouterError(f"{jpath}: not a router file (larger than {MAX_ROUTER_JSON_BYTES // 2**20} MiB)")
    if not isinstance(meta, dict) or meta.get("format") != "tierwise-router":
        raise RouterError(f"{jpath}: not a tierwise router file")
    if meta.get("version") != FORMAT_VERSION:
        raise RouterError(f"{jpath}: router format version {meta.get('version')!r} is not supported")
    restore = ROUTER_KINDS.get(str(meta.get("kind")))
    if restore is None:
        raise RouterError(f"{jpath}: unknown router kind {meta.get('kind')!r}; known: {', '.join(sorted(ROUTER_KINDS))}")
    try:
        arrays = load_npz(npath, max_file_bytes=MAX_WEIGHTS_FILE_BYTES, max_total_bytes=MAX_WEIGHTS_ARRAY_BYTES)
    except FileNotFoundError:
        raise RouterError(f"router weights not found: {npath}") from None
    except TooLarge as e:
        raise RouterError(f"router weights too large: {e}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RouterError(f"{npath}: unreadable router weights ({type(e).__name__})") from None
    check_declared_sizes(meta, jpath)
    try:
        router = restore(meta, arrays)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError, RecursionError) as e:
        raise RouterError(f"{jpath}: incomplete router ({type(e).__name__}: {str(e)[:200]})") from None
    router.train_quantiles = arrays.get("__train_quantiles")
    router.profile = None  # type: ignore[attr-defined]
    if isinstance(meta.get("profile"), dict):
        from tierwise.routers.shift import TrainingProfile

        try:
            router.profile = TrainingProfile.restore(  # type: ignore[attr-defined]
                meta["profile"], {k[10:]: v for k, v in arrays.items() if k.startswith("__profile/")})
        except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError) as e:
            raise RouterError(f"{jpath}: incomplete training profile ({e})") from None
    return router


def check_declared_sizes(meta: Any, jpath: Path) -> None:
    """Refuse a router JSON whose declared sizes would make restoring allocate more than its weights may take
    (`MAX_WEIGHTS_ARRAY_BYTES`): the vectors are built at those sizes before the arrays are checked against them,
    so `"n_buckets": 1099511627776` in a few bytes asked for 4 TiB. Every object of the JSON is looked at (members
    of an ensemble, the vectors of a member, the shift profile's LSA); the JSON is already parsed, so its depth is
    within the recursion limit."""
    cap = MAX_WEIGHTS_ARRAY_BYTES // 4
    todo = [meta]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        todo.extend(node.values())
        cells = 1
        for key in _DECLARED_SIZES:
            v = node.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v <= cap:
                raise RouterError(f"{jpath}: declares {key} = {str(v)[:40]}, more than its weights may take "
                                  f"(at most {cap:,} cells of 4 bytes)")
            cells *= int(v)
        if cells > cap:
            raise RouterError(f"{jpath}: declares {' × '.join(k for k in _DECLARED_SIZES if k in node)} = "
                              f"{cells:,} cells, more than its weights may take (at most {cap:,} cells of 4 bytes)")


def texts(data: OutcomeDataset) -> Sequence[str]:
    return data.prompts


def attach_embedding_cache(router: Router, cache: Any) -> Router:
    """Let a (restored) router's embedding vectors read from and fill `cache` (batch scoring only)."""
    from tierwise.routers.dense import EmbeddingVectors

    for r in [router, *getattr(router, "members", [])]:
        v = getattr(r, "vectors", None)
        if isinstance(v, EmbeddingVectors) and cache is not None:
            v.cache = cache
    return router
