"""Shared CLI plumbing: finding and loading the config with errors a person can act on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from tierwise.config import Config, load_config, parse_config
from tierwise.errors import ConfigError
from tierwise.ledger.store import Ledger

DEFAULT_CONFIG = "tierwise.yaml"

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    default=lambda: os.environ.get("TIERWISE_CONFIG", DEFAULT_CONFIG),
    show_default="tierwise.yaml or $TIERWISE_CONFIG",
    help="Path to tierwise.yaml.",
)


def load_or_exit(path: str, *, allow_starter: bool = False) -> Config:
    if not Path(path).exists() and allow_starter:
        from tierwise.starter import starter_yaml

        click.echo(f"tierwise: no {path} found; using the built-in starter config (run `tierwise init` to write one)",
                   err=True)
        return parse_config(starter_yaml(), file="<starter config>")
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(f"tierwise: config error: {e.message}", err=True)
        sys.exit(2)


def open_ledger(cfg: Config) -> Ledger:
    if not cfg.ledger.enabled:
        raise click.ClickException("the ledger is disabled in this config (ledger.enabled: false)")
    # With the journal config: journals of a crashed gateway are replayed before reading.
    return Ledger.open(cfg.ledger.resolved_path(cfg.base_dir), cfg.ledger.journal)
