"""`tierwise worker`: serve capabilities to the tenant's callers over Redis (docs/distributed.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Any

import click

from tierwise.commands._common import LOG_LEVEL, config_option, load_or_exit

CONFIG_PROBLEM = 2


@click.command("worker")
@config_option
@click.option("--id", "worker_id", default=None, help="Override dispatch.worker.id.")
@click.option("--log-level", type=LOG_LEVEL, default="info", show_default=True,
              help="Lowest level the console shows.")
@click.option("--acl", "print_acl", type=click.Choice(["worker", "caller", "presence"]), is_flag=False,
              flag_value="worker", default=None,
              help="Print the Redis ACL SETUSER line a user of this config's tenant and database needs, then exit: "
              "`--acl` alone the worker's; `--acl caller` a gateway's or application's (dispatch.caller); "
              "`--acl presence` the reader of presence records (dashboard, `--list`).")
@click.option("--list", "list_workers", is_flag=True, help="List the workers present for this config's tenant "
              "(one JSON object a line), then exit.")
def command(config_path: str, worker_id: str | None, log_level: str, print_acl: str | None,
            list_workers: bool) -> None:
    """Serve this machine's models, routes and ensembles as capabilities, taking tasks from Redis."""
    from tierwise.errors import ConfigError

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Printing ACL rules or listing workers reads `dispatch` and `blackboard` alone: the other sections' ${VAR}s
    # (provider keys) need not be set where an administrator prints a worker's rules.
    cfg = load_or_exit(config_path, sections=("dispatch", "blackboard") if print_acl or list_workers else None)
    d = cfg.dispatch
    if list_workers and d is not None:
        import redis.exceptions as rexc

        from tierwise.dispatch.connection import REDIS_ANY, where

        try:
            present = asyncio.run(_present(d))
        except rexc.NoPermissionError:  # a worker's `--acl` user may touch its own presence record only
            click.echo(f"tierwise: cannot list workers: Redis at {where(d.redis_url)} refused this config's user "
                       f"(NOPERM): a worker's `--acl` user reads only its own presence record; list with a config "
                       f"whose dispatch.redis_url may read {d.prefix}presence:{d.tenant}:* (see "
                       "docs/distributed.md)", err=True)
            sys.exit(1)
        except REDIS_ANY as e:
            said = "refused the user name or password" if isinstance(e, rexc.AuthenticationError) else "did not answer"
            click.echo(f"tierwise: cannot list workers: Redis at {where(d.redis_url)} {said} "
                       f"({type(e).__name__}); check dispatch.redis_url in {config_path}", err=True)
            sys.exit(1)
        for rec in present:
            click.echo(json.dumps(rec, sort_keys=True))
        return
    if print_acl in ("caller", "presence"):  # a gateway's config: a `dispatch` section, no worker needed
        if d is None:
            click.echo(f"tierwise: {config_path} has no `dispatch` section: its redis_url, prefix and tenant "
                       "decide the rules (see docs/distributed.md)", err=True)
            sys.exit(CONFIG_PROBLEM)
        from tierwise.dispatch.acl import caller_rules, presence_reader_rules, setuser, url_db

        if print_acl == "caller":
            click.echo(setuser(f"tierwise-caller-{d.tenant}-{d.caller}",
                               caller_rules(d.prefix, d.tenant, d.caller, db=url_db(d.redis_url))))
        else:
            click.echo(setuser(f"tierwise-presence-{d.tenant}",
                               presence_reader_rules(d.prefix, d.tenant, db=url_db(d.redis_url))))
        return
    if d is None or d.worker is None:
        click.echo(f"tierwise: {config_path} has no `dispatch.worker` section: a worker needs its capabilities "
                   "(see docs/distributed.md)", err=True)
        sys.exit(CONFIG_PROBLEM)
    if worker_id is not None:
        from tierwise.dispatch.config import check_name

        try:
            check_name(worker_id, "worker id")
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--id") from None
    if print_acl:
        from tierwise.dispatch.acl import setuser, url_db, worker_rules
        from tierwise.dispatch.blackboard import workers_key

        caps = "+".join(sorted(d.worker.capabilities))  # one user per set of capabilities: its rules differ
        board = workers_key(cfg.blackboard.key_prefix, d.tenant) if cfg.blackboard.enabled is True else None
        wid = worker_id or d.worker.id  # named: one user per worker, writing its own presence record only
        if wid is None:
            click.echo("tierwise: no dispatch.worker.id (or --id): every worker of this locality and these "
                       "capabilities shares these rules, and may write and delete the others' presence records "
                       "(see docs/distributed.md)", err=True)
        click.echo(setuser(f"tierwise-worker-{d.tenant}-{d.worker.locality}-{caps}" + (f"-{wid}" if wid else ""),
                           worker_rules(d.prefix, d.tenant, d.worker.locality, list(d.worker.capabilities), board,
                                        wid, db=url_db(d.redis_url))))
        return
    from tierwise.dispatch.serving import add_ensemble_routes, check_targets
    from tierwise.server.build import build_gateway

    problems = check_targets(cfg, d.worker)
    if problems:
        click.echo(f"tierwise: config error: {config_path}: dispatch.worker.capabilities: " + "; ".join(problems),
                   err=True)
        sys.exit(CONFIG_PROBLEM)
    add_ensemble_routes(cfg, d.worker)
    try:
        gateway = build_gateway(cfg)
    except ConfigError as e:
        click.echo(f"tierwise: config error: {config_path}: {_as_written(e.message, d.worker.capabilities)}",
                   err=True)
        sys.exit(CONFIG_PROBLEM)
    from tierwise.server.build import tune_gc_for_serving

    tune_gc_for_serving()  # the worker's task path is the gateway's: the same collector settings
    try:
        sys.exit(asyncio.run(_serve(cfg, gateway, worker_id)))
    except ValueError as e:  # settings that cannot work together
        click.echo(f"tierwise: config error: {e}", err=True)
        sys.exit(CONFIG_PROBLEM)


async def _present(d: object) -> list[dict[str, object]]:
    from tierwise.dispatch.connection import connect
    from tierwise.dispatch.keys import Keyspace
    from tierwise.dispatch.presence import records

    client = connect(d.redis_url)  # type: ignore[attr-defined]
    try:
        return await records(client, Keyspace(d.prefix, d.tenant))  # type: ignore[attr-defined]
    finally:
        await client.aclose()


async def _serve(cfg: object, gateway: object, worker_id: str | None) -> int:
    from tierwise.dispatch.worker import Worker

    worker = Worker(cfg, gateway, worker_id=worker_id)  # type: ignore[arg-type]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ready = asyncio.Event()

    async def announce() -> None:
        await ready.wait()
        click.echo(f"tierwise: worker {worker.id} ready ({', '.join(worker.zones)}; reading the queues of callers "
                   f"{', '.join(worker.d.read_callers())})", err=True)  # after an upgrade: did it get them all?

    shout = asyncio.create_task(announce())
    try:
        await worker.run(stop, ready)
    finally:
        shout.cancel()
        await gateway.close()  # type: ignore[attr-defined]
    return 0


def _as_written(message: str, capabilities: dict[str, Any]) -> str:
    """An ensemble capability is built as a route named `capability:<name>`, which the user never
    wrote: name the key they did write instead."""
    from tierwise.dispatch.serving import ROUTE_PREFIX

    for cap in capabilities:
        message = message.replace(f"route {ROUTE_PREFIX + cap!r}", f"dispatch.worker.capabilities.{cap}.ensemble")
    return message
