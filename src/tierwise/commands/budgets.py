"""`tierwise budgets`: usage and what remains of each budget, and when its window resets."""

from __future__ import annotations

import sys
from typing import Any

import click

from tierwise.commands._common import (
    config_option,
    gateway_json,
    gateway_url_and_key,
    load_or_exit,
    redis_failure,
)

MEMORY_HINT = "with the memory backend the {} live in the running gateway: start it, or pass --url"


def _from_store(cfg: Any) -> dict[str, Any]:
    import asyncio

    from tierwise.budgets.controller import SpendController

    async def go() -> dict[str, Any]:
        ctl = SpendController(cfg.budgets, cfg.rate_limits, None)
        try:
            return await ctl.status()
        finally:
            await ctl.close()

    try:
        return asyncio.run(go())
    except Exception as e:
        raise redis_failure("read the budgets", cfg.budgets.store.redis_url, e, "budgets.store.redis_url") from None


@click.command("budgets")
@config_option
@click.option("--url", default=None, help="Gateway to ask (memory backend); default: server.host and server.port.")
@click.option("--key-env", default=None, help="Environment variable holding the key to ask with (default: the "
              "first of server.admin_keys_env, which sees every bucket, else the first of server.api_keys_env, "
              "which sees its own).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, url: str | None, key_env: str | None, as_json: bool) -> None:
    """Budgets: spend and tokens used and remaining per budget in its current window, and when it resets."""
    import orjson
    from rich.table import Table

    from tierwise.commands.terminal_text import inert, inert_json, plain_console

    cfg = load_or_exit(config_path, allow_starter=True)
    if cfg.budgets is None or not cfg.budgets.limits:
        click.echo("tierwise: no budgets configured (a `budgets:` section with `limits`; see docs/budgets.md)")
        sys.exit(0)
    if cfg.budgets.store.backend == "redis":
        data = _from_store(cfg)
    else:
        if key_env is None and cfg.server.admin_keys_env:
            key_env = cfg.server.admin_keys_env[0]
        gw_url, key, key_env = gateway_url_and_key(cfg, url, key_env)
        data = gateway_json(gw_url, "/v1/tierwise/budgets", key, hint=MEMORY_HINT.format("budgets"), key_env=key_env)
    if as_json:
        click.echo(inert_json(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()))
        return
    held = data.get("reservations_in_flight")  # not shown to a gateway key (every client's requests)
    t = Table(title=f"tierwise budgets ({data['backend']}" + ("" if held is None else f"; {held} reservation(s) in flight")
              + ")")
    for col in ("budget", "covers", "window", "used $", "limit $", "remaining $", "used tokens", "limit tokens",
                "remaining tokens", "resets at (UTC)"):
        t.add_column(col, justify="left" if col in ("budget", "covers", "window") else "right")

    def v(row: dict[str, Any], k: str, fmt: str) -> str:  # a limit as configured: a cap of $0.001 is not 0.00
        return "-" if k not in row else format(row[k], fmt)

    from tierwise.budgets.plan import usd_text

    for r in data["budgets"]:
        covers = "all" if r["per"] == "global" else f"{r['per']} {r['value']}"
        t.add_row(inert(r["budget"]), inert(covers), r["window"], v(r, "usd_used", ".4f"), ("-" if "usd_limit" not in r else usd_text(r["usd_limit"])[1:]),
                  v(r, "usd_remaining", ".4f"), v(r, "tokens_used", ","), v(r, "tokens_limit", ","),
                  v(r, "tokens_remaining", ","), r["resets_at"])
    plain_console().print(t)  # values come from clients (sessions, tags): no markup
    if not data["budgets"]:
        click.echo("(nothing spent yet)")
