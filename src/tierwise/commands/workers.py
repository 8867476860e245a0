"""`tierwise serve --workers N`: N gateway processes sharing one listening socket.

The parent binds the socket (so a taken port fails before anything starts), makes a private
(0700) directory for prometheus-client's process-shared metrics, forks the workers and
supervises them: a worker that dies is replaced (its metric files are marked dead first), and
SIGINT/SIGTERM stop them all. The directory is removed when the parent ends. Each worker builds
its own app after the fork (its own event loop, HTTP client pool and ledger writer; the ledger
is SQLite in WAL mode and each process journals to its own files).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from tierwise.observability.metrics import MULTIPROC_ENV

log = logging.getLogger("tierwise")

def per_process_state(cfg: Any) -> list[str]:
    """What the config keeps in each process's memory that `--workers N` would multiply: said at
    start, since N processes that each count to the limit let N times the limit through."""
    out = []
    counters = [name for name, sec in (("budgets", cfg.budgets), ("rate_limits", cfg.rate_limits)) if sec is not None]
    store = getattr(cfg.budgets, "store", None)
    if counters and (store is None or store.backend == "memory"):
        out.append(f"{' and '.join(counters)} count in each worker process (budgets.store.backend: memory): "
                   "each process lets the full limit through; set `budgets.store: {backend: redis}` to share them "
                   "(docs/budgets.md)")
    approvals = cfg.approvals
    if approvals is not None and approvals.store.backend == "memory":
        out.append("approvals are held in one worker process (approvals.store.backend: memory): an approver's "
                   "call may reach another; set `approvals.store: {backend: redis}` (docs/distributed.md)")
    return out


RESPAWN_PAUSE_S = 1.0
STOP_GRACE_S = 30.0  # a worker's time to finish its requests after SIGTERM, before SIGKILL
CONFIG_FAILED = 2  # a worker's exit status when building the app from the config failed: not respawned


def _worker(cfg: Any, sock: socket.socket, host: str, port: int, log_level: str) -> None:
    import uvicorn

    from tierwise.errors import ConfigError
    from tierwise.server.build import build_from_config, tune_gc_for_serving, uvicorn_config

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; SIGTERM ends a worker
    # The fork copied the parent's SIGTERM handler (it only sets the parent's `stopping`): a SIGTERM before uvicorn
    # installs its own would be swallowed, and the worker would serve on until the parent killed it 30 s later.
    # The parent forks with SIGTERM blocked, so one sent meanwhile waits for this default and then ends the worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    try:
        app = build_from_config(cfg)
    except ConfigError as e:  # every worker would fail the same way: the parent stops, not respawns
        print(f"tierwise: config error: {cfg.source}: {e.message}", file=sys.stderr, flush=True)
        os._exit(CONFIG_FAILED)
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level))
    tune_gc_for_serving()
    server.run(sockets=[sock])


def _metrics_dir() -> str:
    d = tempfile.mkdtemp(prefix="tierwise-metrics-")  # mkdtemp makes it 0700
    os.chmod(d, 0o700)
    os.environ[MULTIPROC_ENV] = d
    # prometheus-client picks its value store when imported: make sure it sees the directory.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()
    return d


def run_workers(cfg: Any, sock: socket.socket, host: str, port: int, n: int, log_level: str,
                announce: Callable[[], None] = lambda: None) -> int:
    """Fork `n` workers on `sock` and supervise them until SIGINT/SIGTERM. `announce` (the `serving on` line) is
    called once the handlers that stop them are in place: a SIGTERM right after it stops the workers too."""
    from tierwise.sandbox.weak import shield_gateway

    shield_gateway(cfg.sandbox.allow_weak, bool(cfg.ensembles.trusted))  # this process too holds the keys (sandbox.weak)
    mdir = _metrics_dir()
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []
    stopping = failed = False

    def spawn() -> Any:
        p = ctx.Process(target=_worker, args=(cfg, sock, host, port, log_level), daemon=False)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # until the worker has its own disposition
        try:
            p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        return p

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old_int = signal.signal(signal.SIGINT, stop)
    old_term = signal.signal(signal.SIGTERM, stop)
    try:
        announce()
        procs = [spawn() for _ in range(n)]
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if p.is_alive() or stopping:
                    continue
                _mark_dead(p.pid)
                if p.exitcode == CONFIG_FAILED:  # another would fail the same way: stop them all
                    stopping = failed = True
                    break
                log.warning("worker %s exited with %s; starting another", p.pid, p.exitcode)
                time.sleep(RESPAWN_PAUSE_S)
                procs[i] = spawn()
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("worker %s did not stop within %.0f s of SIGTERM; killed", p.pid, STOP_GRACE_S)
                p.kill()
                p.join()
        return CONFIG_FAILED if failed else 0
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        shutil.rmtree(mdir, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
    except Exception:  # metrics off, or the files are gone: nothing to tidy
        pass
