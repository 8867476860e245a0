"""Build the ASGI app from a Config (ledger, pricing, gateway) and the uvicorn settings it runs under."""

from __future__ import annotations

import gc
from typing import Any

from tierwise.config import Config
from tierwise.gateway import Gateway
from tierwise.ledger.store import Ledger
from tierwise.server.asgi import App


def build_gateway(cfg: Config) -> Gateway:
    ledger = Ledger.open(cfg.ledger.resolved_path(cfg.base_dir), cfg.ledger.journal,
                         max_queued=cfg.ledger.max_queued,
                         max_queued_chars=cfg.ledger.max_queued_chars, keep_days=cfg.ledger.keep_days,
                         max_rows=cfg.ledger.max_rows) if cfg.ledger.enabled else None
    return Gateway(cfg, ledger=ledger)


def build_from_config(cfg: Config) -> App:
    return App(build_gateway(cfg))


# CPython's collector, tuned for a server whose requests make many short-lived containers. With
# the defaults (700, 10, 10), under 50 concurrent clients it took about 12% of the gateway's time
# and stalled the event loop for up to 50 ms per full collection, scanning the tens of thousands
# of objects every import and the config left behind. Freezing those (they live as long as the
# process) and collecting the young generation every 10,000 allocations instead of 700 (most
# request objects are freed by reference counting before then) cut the time spent collecting
# about tenfold and halved p99 latency (bench/RESULTS.md, issue 3).
SERVING_GC_THRESHOLDS = (10_000, 20, 100)


def tune_gc_for_serving() -> None:
    """Call once, after the app is built and just before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


KEEP_ALIVE_S = 30


def uvicorn_config(app: Any, host: str, port: int, *, loop: str = "uvloop", log_level: str = "warning") -> Any:
    """How every tierwise server runs (the CLI and the tests): httptools with header corking and the
    connection bounds of `server.limits`, no access log. No proxy-header rewriting either: nothing in
    tierwise decides by the client's address, and uvicorn's default would let any local process
    claim another address with `X-Forwarded-For` (it also cost ~2 µs a request)."""
    import uvicorn

    from tierwise.config import ServerLimits
    from tierwise.server.limits import guarded_protocol

    gw = getattr(app, "gw", None)
    limits = gw.cfg.server.limits if gw is not None else ServerLimits()
    return uvicorn.Config(app, host=host, port=port, loop=loop, http=guarded_protocol(limits, KEEP_ALIVE_S),
                          log_level=log_level, access_log=False, lifespan="on", timeout_keep_alive=KEEP_ALIVE_S,
                          proxy_headers=False)
