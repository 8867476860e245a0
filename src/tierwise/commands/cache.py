"""`tierwise cache stats|invalidate|clear`: look at and empty the answer cache (docs/cache.md).

They work on the shared backends (sqlite, redis) directly, so they reach what a running gateway
uses; the memory backend lives inside one `tierwise serve` process, which a restart empties.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from tierwise.commands._common import config_option, load_or_exit


def _backend(config_path: str) -> Any:
    cfg = load_or_exit(config_path)
    if cfg.cache.backend == "memory":
        raise click.ClickException("this config's cache lives in the memory of the `tierwise serve` process (backend: "
                                   "memory); restarting it empties the cache. Use backend sqlite or redis to manage "
                                   "entries from the command line.")
    from tierwise.cache.answer_cache import make_backend

    return make_backend(cfg.cache, cfg.base_dir)


async def _call(backend: Any, name: str, **kw: Any) -> Any:
    try:
        return await getattr(backend, name)(**kw)
    finally:
        await backend.close()


@click.group("cache")
def command() -> None:
    """Answer cache: show its size, drop entries by route or tenant, or empty it."""


@command.command("stats")
@config_option
def stats(config_path: str) -> None:
    """Entries and bytes in the cache backend."""
    out = asyncio.run(_call(_backend(config_path), "stats"))
    for k, v in out.items():
        click.echo(f"{k}: {v}")


@command.command("invalidate")
@config_option
@click.option("--route", default=None, help="Only entries of this route.")
@click.option("--tenant", default=None, help="Only entries of this tenant (a key's `tenant`, or key:<ENV>).")
def invalidate(config_path: str, route: str | None, tenant: str | None) -> None:
    """Drop the entries of a route and/or a tenant (both: entries matching both)."""
    if route is None and tenant is None:
        raise click.UsageError("give --route and/or --tenant (or use `tierwise cache clear`)")
    n = asyncio.run(_call(_backend(config_path), "invalidate", route=route, tenant=tenant))
    click.echo(f"dropped {n} entr{'y' if n == 1 else 'ies'}")


@command.command("clear")
@config_option
def clear(config_path: str) -> None:
    """Drop every entry."""
    n = asyncio.run(_call(_backend(config_path), "invalidate"))
    click.echo(f"dropped {n} entr{'y' if n == 1 else 'ies'}")
