"""`tierwise approvals list|approve|reject`: the requests waiting for a human's approval, and deciding them.

The commands talk to a running gateway (`--url`, default server.host:server.port) with an admin key
(`--admin-key-env`, default the first of server.admin_keys_env). With the Redis store any replica
lists and decides every replica's pending requests.
"""

from __future__ import annotations

import os
import time
from typing import Any

import click

from tierwise.commands._common import WholeSummaryGroup, config_option, gateway_json, load_or_exit

URL_HELP = "Gateway to ask; default: server.host and server.port."
KEY_ENV_HELP = "Environment variable holding an admin key (default: the first of server.admin_keys_env)."


def gateway_options(f: Any) -> Any:
    """`-c`, `--url` and `--admin-key-env`, taken by the group and by each subcommand (`tierwise approvals list -c
    FILE`, as every other command takes them, and `tierwise approvals -c FILE list`)."""
    f = click.option("--admin-key-env", default=None, help=KEY_ENV_HELP)(f)
    f = click.option("--url", default=None, help=URL_HELP)(f)
    return config_option(f)


@click.group("approvals", cls=WholeSummaryGroup)
@gateway_options
@click.pass_context
def command(ctx: click.Context, config_path: str, url: str | None, admin_key_env: str | None) -> None:
    """Approvals: list the requests waiting for a human's decision, approve or reject them."""
    ctx.obj = {"config_path": config_path, "explicit": ctx.meta.get("tierwise.config_explicit", False), "url": url,
               "key_env": admin_key_env}


def _call(ctx: click.Context, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask the gateway, with the subcommand's options where given, else the group's."""
    group = ctx.obj or {}
    config_path = ctx.params["config_path"]
    if ctx.get_parameter_source("config_path") is click.core.ParameterSource.DEFAULT and group.get("explicit"):
        config_path = group["config_path"]
        ctx.meta["tierwise.config_explicit"] = True
    cfg = load_or_exit(config_path, allow_starter=True)
    env = ctx.params["admin_key_env"] or group.get("key_env") or (
        cfg.server.admin_keys_env[0] if cfg.server.admin_keys_env else None)
    host = cfg.server.host if cfg.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = ctx.params["url"] or group.get("url") or f"http://{host}:{cfg.server.port}"
    return gateway_json(url, "/v1/tierwise/approvals", os.environ.get(env) if env else None, method=method, body=body,
                        key_env=env, key_option="--admin-key-env")


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@gateway_options
@click.pass_context
def list_(ctx: click.Context, as_json: bool, **_: Any) -> None:
    """The pending approvals, oldest first."""
    import orjson
    from rich.table import Table

    from tierwise.commands.terminal_text import inert, inert_json, plain_console

    data = _call(ctx, "GET")
    if as_json:
        click.echo(inert_json(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()))
        return
    t = Table(title=f"pending approvals ({data['backend']})")
    for col in ("id", "what", "model", "key / tenant", "waiting", "left", "preview"):
        t.add_column(col)
    now = data.get("now") or time.time()
    for r in data["pending"]:
        who = " / ".join(x for x in (r.get("key"), r.get("tenant")) if x) or "-"
        t.add_row(r["id"], inert(f"{r['kind']} {r['subject']}"), inert(r.get("model") or "-"), inert(who),
                  f"{now - r['created']:.0f}s", f"{max(0.0, r['deadline'] - now):.0f}s",
                  inert((r.get("preview") or "")[:200]))
    plain_console().print(t)  # previews are client text: no markup
    if not data["pending"]:
        click.echo("(nothing waits for an approval)")


def _decide(ctx: click.Context, id: str, decision: str, reason: str | None) -> None:
    rec = _call(ctx, "POST", {"id": id, "decision": decision, "reason": reason})
    click.echo(f"{rec['id']}: {rec['state']} by {rec['approver']} ({rec['kind']} {rec['subject']})")


@command.command("approve")
@click.argument("approval_id")
@click.option("--reason", default=None, help="Why (kept in the trace and the ledger).")
@gateway_options
@click.pass_context
def approve(ctx: click.Context, approval_id: str, reason: str | None, **_: Any) -> None:
    """Let a pending request go on."""
    _decide(ctx, approval_id, "approve", reason)


@command.command("reject")
@click.argument("approval_id")
@click.option("--reason", default=None, help="Why (the client sees it, and the trace and the ledger keep it).")
@gateway_options
@click.pass_context
def reject(ctx: click.Context, approval_id: str, reason: str | None, **_: Any) -> None:
    """Refuse a pending request: its client gets a 403 in its API's schema."""
    _decide(ctx, approval_id, "reject", reason)
