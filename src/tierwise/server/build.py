"""Build the ASGI app from a Config: ledger, pricing, gateway."""

from __future__ import annotations

from tierwise.config import Config
from tierwise.gateway import Gateway
from tierwise.ledger.store import Ledger
from tierwise.server.asgi import App


def build_gateway(cfg: Config) -> Gateway:
    ledger = Ledger.open(cfg.ledger.resolved_path(cfg.base_dir)) if cfg.ledger.enabled else None
    return Gateway(cfg, ledger=ledger)


def build_from_config(cfg: Config) -> App:
    return App(build_gateway(cfg))
