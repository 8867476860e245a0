"""Build the ASGI app from a Config (ledger, pricing, gateway) and the uvicorn settings it runs under."""

from __future__ import annotations

from typing import Any

from tierwise.config import Config
from tierwise.gateway import Gateway
from tierwise.ledger.store import Ledger
from tierwise.server.asgi import App


def build_gateway(cfg: Config) -> Gateway:
    ledger = Ledger.open(cfg.ledger.resolved_path(cfg.base_dir)) if cfg.ledger.enabled else None
    return Gateway(cfg, ledger=ledger)


def build_from_config(cfg: Config) -> App:
    return App(build_gateway(cfg))


def uvicorn_config(app: Any, host: str, port: int, *, loop: str = "uvloop", log_level: str = "warning") -> Any:
    """How every tierwise server runs (the CLI and the tests): httptools with header corking, no access log."""
    import uvicorn

    from tierwise.server.cork import CorkedHttpToolsProtocol

    return uvicorn.Config(app, host=host, port=port, loop=loop, http=CorkedHttpToolsProtocol, log_level=log_level,
                          access_log=False, lifespan="on", timeout_keep_alive=30)
