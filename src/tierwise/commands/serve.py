"""`tierwise serve`: run the gateway."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
from typing import Any

import click

from tierwise.commands._common import LOG_LEVEL, PORT, config_option, load_or_exit

STARTUP_FAILURE = 3  # uvicorn's own exit status when a server cannot start


LISTEN_BACKLOG = 2048  # uvicorn's own default backlog


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says "serving": a taken port is an error first. It listens
    at once, so a client that connects as soon as `serving on` is printed waits in the backlog until the app has
    started, instead of being refused (before, it was refused until uvicorn had started: about a second)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bind_or_exit(host: str, port: int) -> socket.socket:
    """`bind`, or one line saying why not and exit status 3 (a taken port: not a traceback)."""
    try:
        return bind(host, port)
    except OSError as e:
        why = "the port is already in use (another gateway?): `--port N` picks another" \
            if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        click.echo(f"tierwise: cannot listen on {host}:{port}: {why}", err=True)
        sys.exit(STARTUP_FAILURE)


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Override server.host.")
@click.option("--port", type=PORT, default=None, help="Override server.port.")
@click.option("--log-level", type=LOG_LEVEL, default="warning", show_default=True,
              help="Lowest level the console shows (failed requests and warnings are at warning).")
@click.option("--access-log", is_flag=True, default=None,
              help="Log one line per HTTP request (also `server.access_log: true` in the config).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Gateway processes sharing the port (metrics add up across them).")
def command(config_path: str, host: str | None, port: int | None, log_level: str, access_log: bool | None,
            workers: int) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway."""
    import uvicorn

    from tierwise.server.build import build_from_config, tune_gc_for_serving, uvicorn_config
    from tierwise.server.open_files import raise_open_file_limit

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_or_exit(config_path, allow_starter=True)
    if access_log:
        cfg.server.access_log = True
    h = host or cfg.server.host
    p = port if port is not None else cfg.server.port
    sock = bind_or_exit(h, p)
    p = sock.getsockname()[1]  # the port it got, when asked for port 0
    raise_open_file_limit()  # before the connection cap is derived from it
    from tierwise.commands.doctor import (
        EMPTY_CONFIG,
        cache_shares_redis,
        open_to_the_network,
        silent_local_servers,
        unset_client_keys,
        unset_provider_keys,
    )

    if not cfg.models and not cfg.routes:  # an empty file parses as a config that serves nothing
        click.echo(f"tierwise: warning: {cfg.source or config_path} {EMPTY_CONFIG}", err=True)
    if (keys_problem := unset_client_keys(cfg)) is not None:
        click.echo(f"tierwise: warning: {keys_problem}", err=True)
    dead: set[str] = set()
    for problem in [*unset_provider_keys(cfg, dead), *silent_local_servers(cfg, dead)]:
        click.echo(f"tierwise: warning: {problem}", err=True)
    if dead:
        from tierwise.route_map import without_an_answer

        for problem in without_an_answer(cfg, dead):
            click.echo(f"tierwise: warning: {problem}", err=True)
    if (exposed := open_to_the_network(cfg, h)) is not None:
        click.echo(f"tierwise: warning: {exposed}", err=True)
    if (shared := cache_shares_redis(cfg)) is not None:
        click.echo(f"tierwise: warning: {shared}", err=True)
    from tierwise.commands.doctor_models import blind_to_unpriced
    from tierwise.commands.privacy_checks import remote_marked_local

    # a hosted API written local; a dollar cap that cannot stop a model's spend, a route that never learns
    for problem in remote_marked_local(cfg) + blind_to_unpriced(cfg):
        click.echo(f"tierwise: warning: {problem}", err=True)
    redis_refusals_or_exit(cfg)
    if workers > 1:
        from tierwise.commands.workers import per_process_state, run_workers

        for problem in per_process_state(cfg):
            click.echo(f"tierwise: warning: with --workers {workers}, {problem}", err=True)
        serving = f"tierwise: serving on http://{h}:{p} with {workers} worker processes{dashboard_note(cfg, h, p)}"
        sys.exit(run_workers(cfg, sock, h, p, workers, log_level,
                             announce=lambda: click.echo(serving, err=True)))
    from tierwise.errors import ConfigError

    try:
        if (slow := slow_start(cfg)) is not None:
            click.echo(f"tierwise: {slow}", err=True)
        app = build_from_config(cfg)
    except ConfigError as e:  # found while building the routes (e.g. an ensemble file that is not there)
        click.echo(f"tierwise: config error: {cfg.source or config_path}: {e.message}", err=True)
        sys.exit(2)
    server = uvicorn.Server(uvicorn_config(app, h, p, log_level=log_level))
    # uvicorn takes SIGINT/SIGTERM only once it runs: a Ctrl-C between `serving on` and then raised KeyboardInterrupt
    # wherever the main thread was, and inside a weakref callback or __del__ it was swallowed, so the gateway ran on
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, server.handle_exit)
    click.echo(f"tierwise: serving on http://{h}:{p} (OpenAI: /v1/chat/completions and /v1/responses, "
               "Anthropic: /v1/messages)"
               f"{dashboard_note(cfg, h, p)}", err=True)
    tune_gc_for_serving()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C is how a foreground gateway is meant to stop
        pass
    if not server.started:  # e.g. the app failed its start-up: exit non-zero, so a supervisor sees the failure
        sys.exit(STARTUP_FAILURE)


def redis_refusals_or_exit(cfg: Any) -> None:
    """Every Redis the config names, pinged once before serving: one that refuses the credentials in its URL stops
    the start (exit 2) with one line naming host:port and the setting, never the password; one not reachable is a
    warning (distributed mode rides out a Redis restart). Before (session 25's leftovers), a wrong password was
    silent: redis-py's AuthenticationError is a ConnectionError, so every loop waited for a Redis "away" that
    answered, `/health` said ok and requests said "no worker serves capability"."""
    import asyncio

    from tierwise.commands.doctor import redis_users
    from tierwise.commands.redis_problems import answered_with_error, explain, ping, refused_credentials
    from tierwise.dispatch.connection import where

    users = redis_users(cfg)
    if not users:
        return

    async def ping_all() -> list[BaseException | None]:
        return list(await asyncio.gather(*(ping(url) for url in users)))

    refused = False
    for (url, parts), err in zip(users.items(), asyncio.run(ping_all()), strict=True):
        if err is None:
            _warn_if_evicting(url, parts)
            continue
        named = f"Redis at {where(url)} ({', '.join(parts)})"
        if refused_credentials(err):
            refused = True
            click.echo(f"tierwise: {named} {explain(err, parts)}", err=True)
        else:
            until = "until then" if answered_with_error(err) else "until it answers"
            click.echo(f"tierwise: warning: {named} {explain(err, parts)}: what it serves fails {until}", err=True)
    if refused:
        sys.exit(2)


def _warn_if_evicting(url: str, parts: list[str]) -> None:
    """A warning when a Redis holding what must be counted exactly (budgets, dispatch, approvals) may evict it: only
    `doctor` said so before session 31 (costs3), and a gateway on such a Redis forgot the spend of every budget
    counter evicted (a $2 budget paid $2.31, bench/team_chaos.py --scenario evict). A warning, not a refused start:
    a Redis whose CONFIG is not allowed (managed) is not known either way, and the policy can change while serving."""
    import asyncio

    from tierwise.commands.doctor import MUST_NOT_EVICT, evicting_policy
    from tierwise.dispatch.connection import where

    counted = [p for p in parts if p in MUST_NOT_EVICT]
    if counted and (policy := asyncio.run(evicting_policy(url))) is not None:
        click.echo(f"tierwise: warning: Redis at {where(url)} ({', '.join(counted)}) evicts keys at its maxmemory "
                   f"(maxmemory-policy {policy}): a budget counter evicted is spend forgotten, and budgets are "
                   "passed by it; set `maxmemory-policy noeviction` on that server (docs/budgets.md, Limits)",
                   err=True)


def dashboard_note(cfg: Any, host: str, port: int) -> str:
    """`; dashboard: URL` for the serving line when the config turns the dashboard on (with the way to hand
    it a key, when it needs one), else nothing."""
    obs = getattr(cfg, "observability", None)
    if obs is None or not obs.dashboard.enabled:
        return ""
    url = f"http://{host}:{port}/dashboard"
    keyed = cfg.server.api_keys_env or cfg.server.admin_keys_env or obs.dashboard.viewer_keys_env
    return f"; dashboard: {url}" + ("#key=YOUR_KEY" if keyed else "")


def slow_start(cfg: Any) -> str | None:
    """What makes the start take seconds, said before it does: the privacy section's NER model (spaCy loads for
    ~10 s on a 2-core machine, and `serve` said nothing until `serving on`). Raises ConfigError for what the
    build would refuse only after those seconds (the mapping key)."""
    import importlib.util

    priv = getattr(cfg, "privacy", None)
    if priv is None or not priv.needs_ner_model() or importlib.util.find_spec("spacy") is None:
        return None
    from tierwise.privacy.boundary import mapping_key

    mapping_key(priv)  # a key not set is a config error now, not after the seconds the model takes to load
    return f"loading the privacy detectors' NER model ({priv.ner.model}: a few seconds)"

