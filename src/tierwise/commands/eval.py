"""`tierwise eval`: replay routers over a dataset or the ledger and print the cost/quality table
(APGR, CPT(50%), CPT(80%), USD per 1,000 queries) beside the random and prompt-length baselines."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from tierwise.commands._common import config_option, load_or_exit, open_existing_ledger

if TYPE_CHECKING:  # numpy and the routers load when the command runs, not when help lists it
    from tierwise.evaluation.dataset import OutcomeDataset
    from tierwise.evaluation.online import OnlineEstimate


def _load(data: str, config_path: str, route: str | None) -> tuple[OutcomeDataset, dict[str, OnlineEstimate]]:
    """The data set, and with DATA=ledger each learned route's online estimate from its judged shadow pairs."""
    from tierwise.evaluation.loaders import DataError, data_parts, load_dataset, load_ledger
    from tierwise.evaluation.online import configured_estimates

    if data == "ledger":
        cfg = load_or_exit(config_path)
        ledger = open_existing_ledger(cfg)
        try:
            return load_ledger(ledger, route=route), configured_estimates(cfg, ledger, route=route)
        except DataError as e:
            if route is not None and route not in cfg.routes:  # a typo: the advice on shadow pairs is not for it
                raise DataError(f"no route {route!r} in the config, and no judged pairs of it in the ledger "
                                f"(routes: {', '.join(cfg.routes) or 'none'})") from e
            raise
        finally:
            ledger.close()
    parts = data_parts(data)
    if "ledger" in parts:  # `ledger,mine.jsonl`: the judged pairs trained on with other data (docs/routers.md)
        from tierwise.evaluation.dataset import concat, unit_scale

        cfg = load_or_exit(config_path)
        ledger = open_existing_ledger(cfg)
        try:
            own = load_ledger(ledger, route=route)
        finally:
            ledger.close()
        rest = [unit_scale(load_dataset(p)) for p in parts if p != "ledger"]
        return concat([unit_scale(own), *rest], "+".join(parts)), {}
    return load_dataset(data), {}


def too_few_questions_advice(e: Any, save_path: str | None) -> str:
    """What to do when DATA has fewer questions than --folds: fewer folds, or no cross-validation."""
    ways = []
    if e.questions >= 2:
        ways.append(f"fewer folds: `-k 2` (any k from 2 to {e.questions})")
    if save_path:
        ways.append("no cross-validation: `--no-cv` trains the --router spec on all rows and saves it, unscored")
    else:
        ways.append("no cross-validation: `--no-cv` (with `--save PATH`: train on all rows and save only; the "
                    "baselines and saved routers are still scored)")
    if e.questions < 2:
        ways.append("more rows: cross-validation needs at least 2 distinct questions")
    return "try " + "; or ".join(ways)


_COMPARE = ("before deploying it, compare other specs (`-r linear -r stack-lsa -r transfer-lsa`; `transfer` and "
            "`stack` with the embeddings extra) or gather more rows")


def _not_shown_better(row: Any) -> str | None:
    """What to know before deploying a router saved after a cross-validation it did not win: the table shows
    it, but the line under "saved router" is the one a user acts on."""
    if row is None:
        return None  # --no-cv: nothing measured
    ci = row.apgr_ci
    if ci is not None and ci.low <= 0.5:
        return (f"in cross-validation it was not shown better than random (APGR {row.apgr:.3f}, 95% "
                f"{ci.low:.3f} – {ci.high:.3f}): {_COMPARE}")
    lead = row.lead_ci
    if row.lead is not None and lead is not None and lead.low <= 0:
        return (f"in cross-validation it was not shown better than {row.baseline} (lead {row.lead:+.3f}, paired "
                f"95% {lead.low:+.3f} – {lead.high:+.3f}): a `learned` route with it may route no better than "
                f"{row.baseline} would; {_COMPARE}")
    return None


def _is_saved(spec: str) -> bool:
    from tierwise.evaluation.replay import is_saved_router

    return is_saved_router(spec)


def _progress(message: str) -> None:
    click.echo(f"tierwise eval: {message} …", err=True)


class _StageLines:
    """What runs, when stderr is a pipe or a CI log: one plain line as each router's cross-validation (or the
    save's training) starts, with the time since the start, instead of a line per fold; and a last line when
    the results are written. Without it such a log stayed silent for the minutes a large file takes."""

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()

    def _say(self, text: str) -> None:
        click.echo(f"tierwise eval [{self._clock() - self._start:.0f} s]: {text}", err=True)

    def __call__(self, message: str) -> None:
        import re

        m = re.search(r"\bfold (\d+) of (\d+)", message)
        if m is not None and m.group(1) != "1":
            return
        self._say(message if m is None else message.replace(m.group(0), f"{m.group(2)} folds"))

    def done(self, what: str) -> None:
        self._say(f"done: {what}")


def _reflective(config_path: str, route: str | None) -> dict[str, dict[str, Any]]:
    """With DATA=ledger: each reflective route's verdicts and feedback, as `tierwise boundary` counts them."""
    from tierwise.learning.evidence import route_evidence

    cfg = load_or_exit(config_path)
    names = [n for n, pc in cfg.routes.items()
             if getattr(pc, "policy", None) == "reflective" and route in (None, n)]
    if not names:
        return {}
    ledger = open_existing_ledger(cfg)
    try:
        return {n: route_evidence(cfg, ledger, n) for n in names}
    finally:
        ledger.close()


def _echo_online_only(online: dict[str, OnlineEstimate], reflective: dict[str, dict[str, Any]], note: str,
                      as_json: bool) -> None:
    """`eval ledger` when there is no router table to show: the routes' online figures, and why."""
    import orjson

    if as_json:
        click.echo(orjson.dumps({"dataset": "ledger", "n": 0, "rows": [], "note": note,
                                 "online": {k: v.as_dict() for k, v in online.items()}, "reflective": reflective},
                                option=orjson.OPT_INDENT_2).decode())
        return
    if online:
        _echo_online(online)
    if reflective:
        _echo_reflective(reflective)
    click.echo(f"\n({note})")


def _echo_online(online: dict[str, OnlineEstimate]) -> None:
    from tierwise.commands.terminal_text import inert
    from tierwise.evaluation.online import estimate_rows

    click.echo("online validation (learned routes, their judged shadow pairs):")
    for line in estimate_rows(online.items()):
        click.echo(inert(line))


def _echo_reflective(reflective: dict[str, dict[str, Any]]) -> None:
    from tierwise.commands.terminal_text import inert
    from tierwise.learning.evidence import evidence_lines

    click.echo("online evaluation (reflective routes: the judge's verdicts on local answers, and feedback):")
    for name, ev in reflective.items():
        for line in evidence_lines(name, ev):
            click.echo(inert(line))


def _adapt(ds: OutcomeDataset, specs: list[str], n: int, rounds: int, cache: Any) -> dict[str, dict[str, Any]]:
    from pathlib import Path

    from tierwise.routers.adapt import simulate
    from tierwise.routers.base import attach_embedding_cache, load_router

    out = {}
    for spec in specs:
        router = attach_embedding_cache(load_router(spec), cache)
        out[Path(spec).stem] = simulate(router.score(ds), ds.prompts, ds.strong, ds.weak, n, rounds=rounds)
    return out


class _Amount(click.ParamType):
    """A price or a token count: a finite number, not negative (`-5` and `nan` printed dollars of nothing)."""

    name = "amount"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        import math

        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v) or v < 0:
            self.fail(f"{value!r}: give a finite number, 0 or more", param, ctx)
        return v


_AMOUNT = _Amount()


@click.command("eval")
@click.argument("data", required=False)
@click.option("--ledger", "from_ledger", is_flag=True,
              help="DATA is the configured ledger (same as DATA=ledger): judged shadow pairs, and each learned "
                   "route's online estimate.")
@config_option
@click.option("--router", "-r", "routers", multiple=True,
              help="Router spec to train with k-fold CV (stack, stack-lsa, linear, knn-lsa, mf-lsa, knn-embedding, "
                   "mf-embedding, ensemble, ensemble-embedding, posthoc, transfer, transfer-lsa, transfer-lsa-options, "
                   "transfer-lsa-options-minilm) or a saved router's .json path. Repeatable.")
@click.option("--folds", "-k", type=click.IntRange(min=2), default=5, show_default=True, help="k of k-fold CV by question.")
@click.option("--route", default=None, help="With DATA=ledger: only this route's records.")
@click.option("--drop-subject", "drop_subjects", multiple=True, help="Leave out queries of this subject.")
@click.option("--oracle", is_flag=True, help="Also show the oracle (an upper bound, not a router).")
@click.option("--price-strong", type=_AMOUNT, default=24.7, show_default=True, help="USD per M tokens, strong.")
@click.option("--price-weak", type=_AMOUNT, default=0.24, show_default=True, help="USD per M tokens, weak.")
@click.option("--tokens-per-query", type=_AMOUNT, default=359.0, show_default=True,
              help="Input + output tokens per query (RouteLLM's cost model: 95 + 264).")
@click.option("--ci", "ci_rounds", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for a 95% interval of each APGR (0: none).")
@click.option("--save", "save_path", default=None,
              help="Also train the first --router spec (not a saved router) on all of DATA and save it here "
                   "(.json + .npz).")
@click.option("--no-cv", "no_cv", is_flag=True,
              help="Do not cross-validate router specs (with --save: train and save only; saved routers and "
                   "the baselines are still scored).")
@click.option("--baseline", default="prompt-length", show_default=True,
              help="Row every other row is compared with, paired on the same queries: random, prompt-length, "
                   "oracle (with --oracle), a router as given to --router (`linear`, a saved router's path), or "
                   "`none`.")
@click.option("--scores", "scores_path", default=None,
              help="Write per-question scores (one JSON object a line: id, subject, strong, weak, one field a row).")
@click.option("--target-share", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="For saved routers: the strong-call share to check their calibration at on DATA.")
@click.option("--emb-cache", "emb_cache", default=None,
              help="Folder of the on-disk embedding cache [default: $TIERWISE_CACHE_DIR/embeddings or "
                   "~/.cache/tierwise/embeddings].")
@click.option("--no-emb-cache", is_flag=True, help="Embed without the on-disk cache.")
@click.option("--adapt", "adapt_n", type=click.IntRange(min=1, max=2000), default=None,
              help="For saved routers: simulate `learned.adapt` on DATA's first N judged pairs (a fixed random order; "
                   "the recorded outcomes stand in for the judge) and score the router alone and adapted on the rest "
                   "(at most 2,000: a live route fits on its newest adapt.window ≤ 2,000; prior_weight 300).")
@click.option("--plot", "plot_path", default=None, help="Write the curves to this PNG (needs matplotlib).")
@click.option("--placement", type=click.Choice(["window", "window-tokens", "clusters", "none"]), default=None,
              help="`window`: transferred routers' scores replayed in a random arrival order, each pulled towards its "
                   "nearest neighbours among the requests before it (what a `learned` route with `placement: window` "
                   "does); `window-tokens`: the same, neighbours read by the router's static token vectors; `clusters`: a batch (a CV fold, or DATA for a saved router) pulled towards its clusters' "
                   "means (a gateway route cannot do this); `none`: each request as scored (docs/routers.md). "
                   "[default: window-tokens, as a `learned` route's `placement`]")
@click.option("--judged-rate", "judged_rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="With a windowed placement: also place each score by the judged gains of its nearest judged past "
                   "requests, as a `learned` route with `validation` at `shadow_rate` RATE and `placement_judged` "
                   "does (a seeded RATE share of DATA judged, its outcomes standing in for the judge).")
@click.option("--bank-weight", "bank_weight", type=click.FloatRange(0, 4), default=None,
              help="With `--placement window-tokens`: also add WEIGHT × the training-bank term of a `learned` route "
                   "with `placement_bank: WEIGHT` (the gain of each request's nearest training questions, "
                   "routers/bank.py) [default: 0 (off), as a `learned` route's `placement_bank`]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(data: str | None, from_ledger: bool, config_path: str, routers: tuple[str, ...], folds: int, route: str | None,
            drop_subjects: tuple[str, ...], oracle: bool, price_strong: float, price_weak: float,
            tokens_per_query: float, ci_rounds: int, save_path: str | None, no_cv: bool, baseline: str,
            scores_path: str | None, target_share: float, emb_cache: str | None, no_emb_cache: bool,
            adapt_n: int | None, plot_path: str | None, placement: str | None, judged_rate: float,
            bank_weight: float | None, as_json: bool) -> None:
    """Replay routers over DATA: a benchmark (mmlu, mmlu-no-hsm, gsm8k, mt-bench), `routellm` (all three),
    a JSONL file of {prompt, strong, weak} rows (see docs/routers.md), several of these joined by commas
    (trained on together), or `ledger` (judged shadow pairs from the configured ledger)."""
    import orjson

    if from_ledger and data not in (None, "ledger"):
        raise click.UsageError("give DATA or --ledger, not both")
    if data is None and not from_ledger:
        raise click.UsageError("missing DATA (a benchmark, a JSONL file, or `ledger` / --ledger)")
    if data is not None and not from_ledger and "ledger" in [p.strip() for p in data.split(",")]:
        from tierwise.evaluation.loaders import shadowed_file_note

        shadowed_file_note("ledger", "the configured ledger")
    data = "ledger" if from_ledger else data
    assert data is not None
    # --save trains the first spec that is not a saved router; checked before any training (a CV takes minutes)
    train_spec = next((r for r in routers if not _is_saved(r)), None)
    if save_path and train_spec is None:
        raise click.UsageError("--save needs a --router spec to train (linear, stack, ...; a saved router's .json "
                               "is scored as it is, not retrained)")
    from tierwise.routers import ROUTER_SPECS

    for spec in routers:  # before any training: a misspelt second spec was found only after the first's CV
        if not _is_saved(spec) and spec not in ROUTER_SPECS:
            baseline_row = " (a baseline row every table has; `--baseline random` compares with it)" if spec in (
                "random", "prompt-length") else " (`--oracle` adds it)" if spec == "oracle" else ""
            raise click.UsageError(f"unknown router {spec!r}{baseline_row}; --router takes one of "
                                   f"{', '.join(ROUTER_SPECS)}, or a saved router's .json path")
    if adapt_n is not None and not any(_is_saved(r) for r in routers):
        raise click.UsageError("--adapt simulates adapting a saved router: give its .json with --router")
    if route is not None and "ledger" not in [p.strip() for p in data.split(",")]:
        raise click.UsageError("--route picks a route's records in the ledger: give it with DATA=ledger (or --ledger)")

    from tierwise.evaluation.cv import TooFewQuestions
    from tierwise.evaluation.deployment import calibrate_out_of_fold, check_saved_router
    from tierwise.evaluation.loaders import DataError
    from tierwise.evaluation.metrics import Prices
    from tierwise.evaluation.replay import (
        PLACEMENT,
        evaluate,
        is_saved_router,
        markdown_table,
        plot_curves,
        write_scores,
    )
    from tierwise.policies.learned_config import PLACEMENT_BANK
    from tierwise.routers import RouterError, make_router, save_router
    from tierwise.routers.embedding_cache import EmbeddingCache
    from tierwise.routers.features import require_embeddings
    from tierwise.routers.shift import attach_profile, router_embedding

    reflective = _reflective(config_path, route) if data == "ledger" else {}
    cache = None if no_emb_cache else EmbeddingCache(emb_cache)
    try:
        try:
            ds, online = _load(data, config_path, route)
        except DataError as e:
            if not reflective:
                raise
            # Only reflective evidence: no shadow pairs of both tiers to replay routers over, but the
            # verdicts and feedback are the route's online figures.
            _echo_online_only({}, reflective, f"no routers to replay: {e}", as_json)
            return
        if drop_subjects:
            have = set(ds.subjects)
            unknown = [s for s in drop_subjects if s not in have]
            if unknown:  # a typo would drop nothing without a word
                shown = ", ".join(sorted(have)[:30]) or "none"
                raise DataError(f"no query has subject {unknown[0]!r} (subjects: {shown})")
            ds = ds.without_subjects(drop_subjects, name=ds.name + "".join(f"-no-{s}" for s in drop_subjects))
            if not len(ds):
                raise DataError(f"no queries left after --drop-subject {' '.join(drop_subjects)}")
        gap = _no_gap(ds)
        if gap:
            if data != "ledger":
                raise DataError(gap)
            _echo_online_only(online, reflective, f"no routers to replay: {gap}; more judged pairs will tell them "
                              "apart", as_json)
            return
        gains = ds.gain
        notes = [] if not len(ds) or float(gains.min()) != float(gains.max()) else [
            f"every query has the same gain (strong − weak = {float(gains[0]):g}): which queries go to the strong "
            "model changes nothing, so every router, random included, scores APGR 0.5 here and a router trained on "
            "it learns nothing; a router needs queries on which the two models differ by different amounts"]
        notes += _noisy_gap(ds)
        if save_path and train_spec is not None \
                and router_embedding(make_router(train_spec, embedding_cache=cache)) is not None:
            require_embeddings()  # its training profile embeds the prompts: say so before training, not after
        prices = Prices(price_strong, price_weak, 0.0, tokens_per_query)
        scored = [r for r in routers if not no_cv or is_saved_router(r)]
        base = None if baseline == "none" else baseline
        # Say what runs: cross-validating on a large file takes minutes. On a terminal fold by fold; in a pipe or a
        # CI log a line a stage; with --json nothing unless on a terminal (stdout is the JSON, `2>&1` stays parseable)
        stages = _StageLines() if not sys.stderr.isatty() and not as_json and (scored or save_path) else None
        progress = _progress if sys.stderr.isatty() and (scored or save_path) else stages
        unplaced: dict[str, Any] = {}
        rows = evaluate(ds, scored, folds=folds, prices=prices, oracle=oracle, ci_rounds=ci_rounds,
                        embedding_cache=cache, baseline=base, progress=progress, placement=placement or PLACEMENT,
                        unplaced=unplaced, judged_rate=judged_rate,
                        bank_weight=PLACEMENT_BANK if bank_weight is None else bank_weight)
        if save_path and progress is not None:
            progress(f"{train_spec}: training on all {len(ds):,} queries to save it")
        checks = [check_saved_router(r, ds, target_share, cache=cache) for r in routers if is_saved_router(r)]
        adapted = _adapt(ds, [r for r in routers if is_saved_router(r)], adapt_n, ci_rounds, cache) if adapt_n else {}
        saved = None
        save_notes: list[str] = []
        if save_path and train_spec is not None:
            r = make_router(train_spec, embedding_cache=cache)
            r.fit(ds)
            # its calibration on scores of prompts it did not train on: the CV's when it ran, else folds fitted now
            name = f"{train_spec} ({folds}-fold CV)"  # unplaced: the calibration is for single requests' scores
            oof = unplaced.get(name, next((row.scores for row in rows if row.name == name), None))
            if not calibrate_out_of_fold(r, train_spec, ds, folds=folds, cache=cache, oof=oof, progress=progress):
                save_notes.append("calibrated on its training prompts' own scores: fewer than 2 questions for "
                                  "out-of-fold ones (its strong-call share on new prompts will be off; give the route "
                                  "`target_share`, which re-fits on traffic)")
            attach_profile(r, ds.prompts)  # its training distribution, for shift detection
            weak_note = _not_shown_better(next((row for row in rows if row.name == name), None))
            if weak_note:
                save_notes.append(weak_note)
            saved = str(save_router(r, save_path))
        if scores_path:
            write_scores(ds, rows, scores_path)
    except (DataError, RouterError, ValueError, RuntimeError, OSError) as e:
        click.echo(f"tierwise eval: {e}", err=True)
        if isinstance(e, TooFewQuestions):
            click.echo(too_few_questions_advice(e, save_path), err=True)
        sys.exit(2)
    finally:
        if cache is not None:
            cache.close()
    if plot_path:
        try:
            plot_curves(ds, rows, plot_path)
        except RuntimeError as e:
            click.echo(f"tierwise eval: {e}", err=True)
            sys.exit(2)
    if as_json:
        click.echo(orjson.dumps({"dataset": ds.name, "n": len(ds), "strong": float(ds.strong.mean()),
                                 "weak": float(ds.weak.mean()), "rows": [r.row() for r in rows],
                                 "saved_routers": [c.as_dict() for c in checks],
                                 "online": {k: v.as_dict() for k, v in online.items()},
                                 "reflective": reflective, "adapt": adapted,
                                 "saved": saved, "saved_notes": save_notes, "notes": notes, "plot": plot_path,
                                 "scores": scores_path},
                                option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(markdown_table(ds, rows))
    click.echo(f"\nAPGR: the share of the weak-to-strong quality gap a router recovers, averaged over every strong-call "
               f"share (random: about 0.5). CPT(x%): the strong-call share it needs to recover x% of the gap. $/1k: USD "
               f"per 1,000 queries at that share, at ${price_strong:g}/M tokens strong and ${price_weak:g}/M weak, "
               f"{tokens_per_query:g} tokens a query (defaults: RouteLLM's GPT-4/Mixtral cost model; yours: "
               "--price-strong, --price-weak, --tokens-per-query).")
    if not routers and not online and not reflective:
        notes.append("only the baselines are shown: no router was given; add one or more to train and compare on "
                     "this data (`-r linear -r stack-lsa`, or a saved router's .json)")
    for note in notes:
        click.echo(f"\nNote: {note}.")
    if online:
        click.echo("")
        _echo_online(online)
    if reflective:
        click.echo("")
        _echo_reflective(reflective)
    for c in checks:
        click.echo("")
        click.echo(c.text())
    if adapted:
        from tierwise.routers.adapt import simulation_lines

        click.echo(f"\nadapted on the first {adapt_n} judged pairs (`learned.adapt` with prior_weight 300, simulated; "
                   "APGR on the rest):")
        for name, sim in adapted.items():
            for line in simulation_lines(name, sim):
                click.echo(line)
    if saved:
        click.echo(f"\nsaved router: {saved}")
        for note in save_notes:
            click.echo(f"- {note}")
    if scores_path:
        click.echo(f"per-question scores: {scores_path}")
    if plot_path:
        click.echo(f"curves: {plot_path}")
    if stages is not None:
        best = max((r for r in rows if r.name not in ("random", "prompt-length", "oracle")), key=lambda r: r.apgr, default=None)
        # "best" alone read as a recommendation where prompt length (no training at all) scored higher
        length = next((r for r in rows if r.name == "prompt-length"), None)
        below = f" (below prompt-length's {length.apgr:.3f})" if best and length and best.apgr < length.apgr else ""
        stages.done(f"{len(ds):,} queries" + (f", best {best.name} APGR {best.apgr:.3f}{below}" if best else "")
                    + (f", saved {saved}" if saved else ""))


def _no_gap(ds: OutcomeDataset) -> str | None:
    """Why APGR cannot be read on `ds`, or None. APGR divides by the strong tier's lead over the weak one: with no
    lead it is undefined, and with the weak tier ahead on average its scale turns over (a router that sends the right
    queries to the strong model scores below 0.5, random about 0.5, the figure of a good router reads as a bad one)."""
    if not len(ds):
        return None
    strong, weak = float(ds.strong.mean()), float(ds.weak.mean())
    if strong == weak:
        return (f"on the {len(ds)} queries of {ds.name} both tiers score {strong:.4g} on average: APGR, the share of "
                "the gap between them a router recovers, is undefined without a gap")
    if strong < weak:
        return (f"on the {len(ds)} queries of {ds.name} the weak (local) tier scores higher on average than the strong "
                f"(frontier) one ({weak:.4g} against {strong:.4g}): APGR, the share of the strong tier's lead a router "
                "recovers, has no lead to recover and its figures would read upside down (a good router below 0.5); "
                "check that the `strong` and `weak` fields are not swapped")
    return None


def _noisy_gap(ds: OutcomeDataset) -> list[str]:
    """A note when the strong tier's lead is within its own noise: APGR divides by that lead, so its figures (and the
    best router named) are then noise however large they read (0–10 grades with a 1/300 lead gave random APGR −22.95)."""
    if len(ds) < 2:
        return []
    gain = ds.gain
    lead = float(gain.mean())
    half = 1.96 * float(gain.std(ddof=1)) / len(gain) ** 0.5  # normal interval of a mean: cheap at any size
    if lead - half > 0:
        return []
    return [f"the strong tier's lead over the weak one, {lead:.4g} (95% interval {lead - half:.4g} to "
            f"{lead + half:.4g}), is not distinguishable from zero on these {len(ds):,} queries: APGR divides by it, "
            "so the APGR and CPT figures here are noise, however far from 0.5 they read; more queries, or queries on "
            "which the two tiers differ, tell routers apart"]
