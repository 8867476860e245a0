"""Offline replay: run routers over a dataset (k-fold CV for ones that train, saved routers as
they are) beside the random and prompt-length baselines, and render the cost/quality table
and curves. `tierwise eval` and bench/routers_benchmark.py both use this."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.evaluation.baselines import prompt_length_scores, random_scores
from tierwise.evaluation.cv import cross_val_scores, group_folds
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.deployment import spec_of
from tierwise.evaluation.metrics import Prices, Summary, oracle_scores, summarize, with_lead
from tierwise.routers.placement import PLACEMENT, place, places, window_encoder

WINDOWED = ("window", "window-tokens")


def judged_verdicts(data: OutcomeDataset, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """What a route with online validation at shadow rate `rate` would have judged of `data` (its outcomes as the
    judge's verdicts, a seeded draw of which requests: routers/window.judged_draws); None at rate 0."""
    if rate <= 0:
        return None
    from tierwise.routers.window import judged_draws

    return np.asarray(data.strong, float), np.asarray(data.weak, float), judged_draws(len(data), rate, seed)


def placed_by_fold(scores: np.ndarray, data: OutcomeDataset, k: int, seed: int, placement: str,
                   spec: str | None = None, judged_rate: float = 0.0, bank_weight: float = 0.0) -> np.ndarray:
    """Out-of-fold scores placed fold by fold (each fold of `cross_val_scores` is a batch); a windowed placement
    reads each fold's prompts as the router fitted on the other folds would (`spec`'s); `judged_rate` > 0: it also
    averages the judged gains of a route judging that share (`judged_verdicts`); `bank_weight` > 0 with
    "window-tokens": the bank term of the training bank the fold's router would carry (routers/bank.py)."""
    out = np.asarray(scores, dtype=float).copy()
    if placement == "none":
        return out
    for test in group_folds(data, k, seed, merge_prompts=True):
        encode, bank = None, None
        if placement in WINDOWED:
            train = data.take(np.setdiff1d(np.arange(len(data)), test))
            encode = window_encoder(placement, train_prompts=train.prompts, spec=spec)
            if encode is None:  # a router a route would not place this way: as scored
                return np.asarray(scores, dtype=float).copy()
            if bank_weight > 0 and placement == "window-tokens":
                from tierwise.routers.bank import fit_bank

                bank = fit_bank(encode, train)
        part = data.take(test)
        verdicts = judged_verdicts(part, judged_rate, seed) if placement in WINDOWED else None
        out[test] = place(out[test], part.prompts, placement, encode, seed, verdicts, bank, bank_weight)
    return out


def is_saved_router(spec: str) -> bool:
    return spec.endswith(".json") or Path(spec + ".json").exists()


def evaluate(data: OutcomeDataset, routers: Sequence[str], *, folds: int = 5, prices: Prices | None = None,
             seed: int = 0, baselines: bool = True, oracle: bool = False,
             embedding_cache: Any = None, ci_rounds: int = 0, baseline: str | None = None,
             progress: Callable[[str], None] | None = None, placement: str = PLACEMENT,
             unplaced: dict[str, np.ndarray] | None = None, judged_rate: float = 0.0,
             bank_weight: float = 0.0) -> list[Summary]:
    """One row per router (and the baselines); `ci_rounds` > 0 adds a bootstrap interval to each APGR.
    With `baseline` (the name of one of the rows, e.g. `prompt-length`), every other row also gets its
    lead over that baseline and the paired bootstrap interval of the lead. `progress` hears what is being
    done as each router and fold starts (`tierwise eval` prints it to a terminal). `placement`: how the
    transferred routers' scores of a batch (a CV fold, or the data set for a saved router) are placed
    (routers/placement.py; "none": as a single request gets them); `unplaced`, when given, receives each placed
    row's scores before placement (what a calibration for single requests needs). `judged_rate` > 0: a windowed
    placement also averages judged verdicts, as a `learned` route with online validation at that shadow rate and
    `placement_judged` would (the data set's outcomes as the judge's verdicts, each known to the requests after it).
    `bank_weight` > 0: "window-tokens" also adds the training-bank term of a route with `placement_bank`
    (routers/bank.py; a saved router without a bank is placed without it, as a route would)."""
    from tierwise.routers import load_router, make_router
    from tierwise.routers.base import attach_embedding_cache

    if baseline is not None:  # before any training: a misnamed baseline was found only after minutes of CV
        check_baseline(baseline, routers, folds=folds, baselines=baselines, oracle=oracle)
    rows: list[Summary] = []
    label_of: dict[str, str] = {}  # each router spec (or saved path) -> its row's name, for `baseline`
    if baselines:
        rows.append(summarize("random", random_scores(data, seed), data.strong, data.weak, prices,
                              ci_rounds=ci_rounds))
        rows.append(summarize("prompt-length", prompt_length_scores(data), data.strong, data.weak, prices,
                              ci_rounds=ci_rounds))
    for spec in routers:
        if is_saved_router(spec):
            r = attach_embedding_cache(load_router(spec), embedding_cache)
            raw = r.score(data)
            label = f"{Path(spec).stem} (saved {spec_of(r)})"
            placing = places(r.kind, getattr(getattr(r, "base", None), "kind", None))
            encode = window_encoder(placement, r) if placing and placement in WINDOWED else None
            placing = placing and (placement not in WINDOWED or encode is not None)  # as a route would: as is
            verdicts = judged_verdicts(data, judged_rate, seed) if placement in WINDOWED else None
            scores = place(raw, data.prompts, placement, encode, seed, verdicts, getattr(r, "bank", None),
                           bank_weight) if placing else raw
        else:
            make_router(spec, embedding_cache=embedding_cache)  # fail fast on an unknown spec
            say = None if progress is None else (
                lambda f, k, spec=spec: progress(f"{spec}: training fold {f} of {k} on {len(data):,} queries"))
            raw = cross_val_scores(data, partial(make_router, spec, embedding_cache=embedding_cache), folds, seed,
                                   progress=say)
            label = f"{spec} ({folds}-fold CV)"
            placing = places(spec)
            scores = placed_by_fold(raw, data, folds, seed, placement, spec, judged_rate,
                                    bank_weight) if placing else raw
        label_of[spec] = label
        if placing and unplaced is not None:
            unplaced[label] = raw
        rows.append(summarize(label, scores, data.strong, data.weak, prices, cascade=spec.startswith("posthoc"),
                              ci_rounds=ci_rounds))
    if oracle:
        rows.append(summarize("oracle", oracle_scores(data.strong, data.weak), data.strong, data.weak, prices))
    if baseline is not None:
        baseline = next((label_of[s] for s in routers if baseline in _names(s, folds)), baseline)
        base = next((r for r in rows if r.name == baseline), None)
        if base is None:
            raise ValueError(f"baseline {baseline!r} is not one of the rows: {', '.join(r.name for r in rows)}")
        rows = [r if r is base or r.name == "oracle" else with_lead(r, base, data.strong, data.weak, ci_rounds)
                for r in rows]
    return rows


def _names(spec: str, folds: int) -> tuple[str, ...]:
    """What `--baseline` may call a router's row: the spec as given to `--router`, or the row's own name (a saved
    router's row is named by its file's stem and kind, `mine (saved linear)`, so its stem and path also name it)."""
    if is_saved_router(spec):
        path = spec[:-len(".json")] if spec.endswith(".json") else spec
        return spec, path, path + ".json", Path(path).stem
    return spec, f"{spec} ({folds}-fold CV)"


def check_baseline(baseline: str, routers: Sequence[str], *, folds: int, baselines: bool = True,
                   oracle: bool = False) -> None:
    """ValueError unless `baseline` names a row `evaluate` will make: a baseline row, the oracle, or one of
    `routers` by its spec (`linear`), its row name (`linear (5-fold CV)`) or a saved router's path or stem."""
    names = (["random", "prompt-length"] if baselines else []) + (["oracle"] if oracle else [])
    if baseline in names or any(baseline in _names(s, folds) for s in routers):
        return
    saved = [Path(s[:-len(".json")] if s.endswith(".json") else s).stem for s in routers if is_saved_router(s)]
    if any(baseline.startswith(f"{stem} (saved ") and baseline.endswith(")") for stem in saved):
        return
    rows = names + [s for s in routers]
    raise ValueError(f"baseline {baseline!r} is not one of the rows: give one of {', '.join(rows)}"
                     + ("" if oracle or baseline != "oracle" else " (`oracle` needs --oracle)")
                     + " (a router as given to --router), or `none`")


def markdown_table(data: OutcomeDataset, rows: Sequence[Summary]) -> str:
    with_ci = any(r.apgr_ci is not None for r in rows)
    base = next((r.baseline for r in rows if r.baseline), None)
    ci_head = " APGR 95% interval |" if with_ci else ""
    lead_head = f" lead over {base} (paired 95%) |" if base else ""
    head = (f"**{data.name}** — n={len(data)}, strong {data.strong.mean():.4f}, weak {data.weak.mean():.4f}\n\n"
            f"| router | APGR |{ci_head}{lead_head} CPT(50%) | CPT(80%) | $/1k at CPT(50%) | $/1k at CPT(80%) |\n"
            "|---|---|" + ("---|" if with_ci else "") + ("---|" if base else "") + "---|---|---|---|")

    def ci(r: Summary) -> str:
        if not with_ci:
            return ""
        return " — |" if r.apgr_ci is None else f" {r.apgr_ci.low:.3f} – {r.apgr_ci.high:.3f} |"

    def lead(r: Summary) -> str:
        if not base:
            return ""
        if r.lead is None:
            return " — |"
        inside = "" if r.lead_ci is None else f" ({r.lead_ci.low:+.3f} – {r.lead_ci.high:+.3f})"
        return f" {r.lead:+.3f}{inside} |"

    lines = [f"| {r.name} | {r.apgr:.3f} |{ci(r)}{lead(r)} {r.cpt50:.1f}% | {r.cpt80:.1f}% | {r.cost50:.3f} | "
             f"{r.cost80:.3f} |" for r in rows]
    return "\n".join([head, *lines])


def plot_curves(data: OutcomeDataset, rows: Sequence[Summary], path: str | Path) -> Path:
    """Quality against strong-call % for every router (needs matplotlib: the `plot` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'tierwise[plot]'") from None
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        ax.plot(r.curve.strong_pct, r.curve.quality, marker=".", label=f"{r.name} (APGR {r.apgr:.3f})")
    ax.axhline(float(data.weak.mean()), color="grey", linestyle="--", label=f"weak: {data.weak_model}")
    ax.axhline(float(data.strong.mean()), color="red", linestyle="--", label=f"strong: {data.strong_model}")
    ax.set_xlabel("strong model calls (%)")
    ax.set_ylabel("quality")
    ax.set_title(f"routing curves — {data.name}")
    ax.legend(fontsize=7)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def write_scores(data: OutcomeDataset, rows: Sequence[Summary], path: str | Path) -> Path:
    """Per-question scores as JSONL: `id`, `subject`, `strong`, `weak`, then one field per row (its name)."""
    import orjson

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = [(r.name, r.scores) for r in rows if r.scores is not None]
    with out.open("wb") as f:
        for i in range(len(data)):
            rec: dict[str, Any] = {"id": data.groups[i], "subject": data.subjects[i],
                                   "strong": float(data.strong[i]), "weak": float(data.weak[i])}
            rec.update({name: float(s[i]) for name, s in cols})
            f.write(orjson.dumps(rec) + b"\n")
    return out
