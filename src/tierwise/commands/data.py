"""`tierwise data get routellm`: the public data `tierwise eval` and `replay-serve` read."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tierwise.commands._common import WholeSummaryGroup

DATASETS = ("routellm",)


@click.group("data", cls=WholeSummaryGroup)
def command() -> None:
    """Public data sets for evaluation: fetch them from their source, checked byte for byte."""


@command.command("get")
@click.argument("dataset", type=click.Choice(DATASETS))
@click.option("--to", "to", type=click.Path(file_okay=False), default=None,
              help="Folder to put it in (default: $TIERWISE_DATA; unset, the data is looked for where "
                   "`tierwise eval` looks, ../shared/data among them, and else fetched into "
                   "~/.local/share/tierwise/data).")
@click.option("--base-url", default=None, metavar="URL",
              help="A mirror with the repository's paths (default: the pinned RouteLLM commit on GitHub; "
                   "or $TIERWISE_ROUTELLM_URL).")
def get(dataset: str, to: str | None, base_url: str | None) -> None:
    """Download DATASET (resumable; every file's size and SHA-256 checked), unless it is on disk already.

    routellm: RouteLLM's GPT-4 vs Mixtral outcomes on MMLU, GSM8K and MT-Bench (about 12 MB, 67 files),
    used by `tierwise eval mmlu|gsm8k|mt-bench` and `tierwise replay-serve gsm8k`."""
    import os

    from tierwise.datasets import routellm
    from tierwise.datasets.fetch import FetchError, Unreachable
    from tierwise.evaluation.loaders import data_root

    explicit = to or os.environ.get("TIERWISE_DATA")  # the user said where: check and fill that folder
    found = Path(explicit) if explicit else data_root()
    if found is not None:
        bad = routellm.missing(found)
        if not bad:
            click.echo(f"RouteLLM data already on disk: {found.resolve() / routellm.FOLDER} ({len(routellm.FILES)} "
                       "files, sizes and SHA-256 match); nothing to fetch")
            return
        if not explicit:
            click.echo(f"RouteLLM data at {found / routellm.FOLDER} is incomplete or altered ({len(bad)} of "
                       f"{len(routellm.FILES)} files missing or different, e.g. {bad[0]}); fetching a checked copy",
                       err=True)
    root = Path(explicit) if explicit else routellm.default_root()
    try:
        fetched = routellm.get(root, base_url=base_url, progress=lambda m: click.echo(m, err=True))
    except FetchError as e:
        click.echo(f"tierwise: {e}", err=True)
        if isinstance(e, Unreachable):  # a machine without the internet: say the two ways that still work
            click.echo("tierwise: without a network here, fetch from a mirror holding the same paths (--base-url URL "
                       "or $TIERWISE_ROUTELLM_URL), or copy the folder from a machine that has it (`tierwise data "
                       f"get routellm` there) and point TIERWISE_DATA at the folder holding {routellm.FOLDER}/",
                       err=True)
        sys.exit(1)
    where = root / routellm.FOLDER
    click.echo(f"RouteLLM data in {where}: {len(fetched)} files fetched, "
               f"{len(routellm.FILES) - len(fetched)} already there; all checked")
    found = data_root()
    if found is None or found.resolve() != root.resolve():
        click.echo(f"tierwise eval looks elsewhere first: run it with TIERWISE_DATA={root}", err=True)
