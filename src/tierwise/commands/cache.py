"""`tierwise cache stats|invalidate|clear`: look at and empty the answer cache (docs/cache.md).

With the sqlite and redis backends they work on the backend directly, so they reach what running
gateways use; the memory backend lives inside one `tierwise serve` process, so for it they call
that gateway's admin routes (`/v1/tierwise/cache`, cache/admin.py), with the config's first admin
key (the statistics are an admin's or a viewer's; an admin key empties every tenant's entries), else
its first gateway key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from tierwise.commands._common import (
    WholeSummaryGroup,
    config_option,
    gateway_json,
    gateway_url_and_key,
    load_or_exit,
    redis_failure,
)

HINT = "with the memory backend the cache lives in the running gateway: start it, or pass --url"

_URL = click.option("--url", default=None, help="Gateway to ask (memory backend); default: server.host and "
                    "server.port.")
_KEY = click.option("--key-env", default=None, help="Environment variable holding the key to ask with (default: "
                    "the first of server.admin_keys_env, else of server.api_keys_env).")


def _run(config_path: str, url: str | None, key_env: str | None, name: str, **kw: Any) -> Any:
    """`name` (stats | invalidate) on the config's backend, or through the gateway for memory."""
    cfg = load_or_exit(config_path)
    if cfg.cache.backend == "memory":
        if key_env is None and cfg.server.admin_keys_env:
            key_env = cfg.server.admin_keys_env[0]
        gw_url, key, key_env = gateway_url_and_key(cfg, url, key_env)
        if name == "stats":
            return gateway_json(gw_url, "/v1/tierwise/cache", key, hint=HINT, key_env=key_env)
        body = {k: v for k, v in kw.items() if v is not None}
        return gateway_json(gw_url, "/v1/tierwise/cache/invalidate", key, method="POST", body=body, hint=HINT,
                            key_env=key_env)["dropped"]
    from tierwise.cache.answer_cache import make_backend

    backend = make_backend(cfg.cache, cfg.base_dir)

    async def go() -> Any:
        try:
            return await getattr(backend, name)(**kw)
        finally:
            await backend.close()

    if cfg.cache.backend != "redis":
        return asyncio.run(go())
    try:
        return asyncio.run(go())
    except Exception as e:  # Redis away, a refused password: one line, never a traceback (or its text unscrubbed)
        doing = "read the cache's statistics" if name == "stats" else "drop cache entries"
        raise redis_failure(doing, cfg.cache.redis_url, e, "cache.redis_url") from None


@click.group("cache", cls=WholeSummaryGroup)
def command() -> None:
    """Answer cache: show its size, drop entries by route or tenant, or empty it."""


@command.command("stats")
@config_option
@_URL
@_KEY
def stats(config_path: str, url: str | None, key_env: str | None) -> None:
    """Entries and bytes in the cache backend."""
    out = _run(config_path, url, key_env, "stats")
    for k, v in out.items():
        if k != "object":
            click.echo(f"{k}: {v}")


@command.command("invalidate")
@config_option
@click.option("--route", default=None, help="Only entries of this route.")
@click.option("--tenant", default=None, help="Only entries of this tenant (a key's `tenant`, or key:<ENV>).")
@_URL
@_KEY
def invalidate(config_path: str, route: str | None, tenant: str | None, url: str | None, key_env: str | None) -> None:
    """Drop the entries of a route and/or a tenant (both: entries matching both)."""
    if route is None and tenant is None:
        raise click.UsageError("give --route and/or --tenant (or use `tierwise cache clear`)")
    n = _run(config_path, url, key_env, "invalidate", route=route, tenant=tenant)
    click.echo(f"dropped {n} entr{'y' if n == 1 else 'ies'}")


@command.command("clear")
@config_option
@_URL
@_KEY
def clear(config_path: str, url: str | None, key_env: str | None) -> None:
    """Drop every entry."""
    n = _run(config_path, url, key_env, "invalidate")
    click.echo(f"dropped {n} entr{'y' if n == 1 else 'ies'}")


@command.command("train-verifier")
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the model (.npz).")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1, 100),
              help="Passes over the labelled pairs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the folds and the training (a rerun "
              "with the same seed gives the same model).")
@click.option("--model", "model_name", default="all-MiniLM-L6-v2", show_default=True,
              help="Embedding model; must be the one `cache.semantic.model` names.")
def train_verifier(pairs: str, out: str, epochs: int, seed: int, model_name: str) -> None:
    """Train the semantic tier's verifier on your own labelled pairs.

    PAIRS is JSON lines {"text_a": ..., "text_b": ..., "label": 1 (same question) or 0}. The pairs are
    split by question (no question in two parts): 80% train, 10% calibrate the thresholds, 10% test
    and are reported. Point `cache.semantic.verifier_path` at the written file. Needs the
    `embeddings` extra (torch).
    """
    import time

    import numpy as np

    from tierwise.cache import verifier_training as vt
    from tierwise.cache.pair_model import PairModel
    from tierwise.routers.features import Embedder, MissingExtra, require_embeddings

    try:
        require_embeddings()  # before reading and checking every pair
        data = vt.read_pairs(pairs)
        t0 = time.time()
        st = Embedder(model_name)._load()
    except (OSError, ValueError, MissingExtra) as e:
        raise click.ClickException(str(e)) from None
    d = vt.pair_data(data, lambda texts: vt.encode(texts, st))
    click.echo(f"{len(data)} pairs, {len(d.texts)} questions embedded in {time.time() - t0:.0f} s")
    folds = vt.fold_of(d, 10, seed)
    tr, ca, te = np.where(folds < 8)[0], np.where(folds == 8)[0], np.where(folds == 9)[0]
    if min(len(tr), len(ca), len(te)) == 0 or len(set(d.y[ca].tolist())) < 2:
        raise click.ClickException("too few distinct questions to split into train, calibration and test parts")
    arrays = vt.train(d, tr, ca, seed=seed, epochs=epochs, log=click.echo)
    p = vt.score_pairs(PairModel({**arrays, "format": np.array(2)}), d, te)
    cos = np.einsum("ij,ij->i", d.sent[d.a[te]], d.sent[d.b[te]])
    click.echo(f"held-out test: {len(te)} pairs, {d.y[te].mean():.1%} duplicates")
    for f, t in zip(vt.FHRS, arrays["thr"], strict=True):
        hr, fr = vt.at_threshold(p, d.y[te], float(t))
        click.echo(f"  target {f:.1%} false hits: served {hr:.1%}, wrong {fr:.2%} (cosine at its best cut-off for "
                   f"that target: {vt.hit_rate_at(cos, d.y[te], f)[0]:.1%})")
    PairModel.save(out, **arrays)
    click.echo(f"wrote {out}; set cache.semantic.verifier_path to use it")
