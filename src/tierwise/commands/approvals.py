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


def _call(ctx: click.Context, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return gateway_json(ctx.obj["url"], "/v1/tierwise/approvals", ctx.obj["key"], method=method, body=body,
                        key_env=ctx.obj["key_env"], key_option="--admin-key-env")


@click.group("approvals", cls=WholeSummaryGroup)
@config_option
@click.option("--url", default=None, help="Gateway to ask; default: server.host and server.port.")
@click.option("--admin-key-env", default=None, help="Environment variable holding an admin key "
              "(default: the first of server.admin_keys_env).")
@click.pass_context
def command(ctx: click.Context, config_path: str, url: str | None, admin_key_env: str | None) -> None:
    """Approvals: list the requests waiting for a human's decision, approve or reject them."""
    cfg = load_or_exit(config_path, allow_starter=True)
    env = admin_key_env or (cfg.server.admin_keys_env[0] if cfg.server.admin_keys_env else None)
    host = cfg.server.host if cfg.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    ctx.obj = {"url": url or f"http://{host}:{cfg.server.port}", "key": os.environ.get(env) if env else None,
               "key_env": env}


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
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
@click.pass_context
def approve(ctx: click.Context, approval_id: str, reason: str | None) -> None:
    """Let a pending request go on."""
    _decide(ctx, approval_id, "approve", reason)


@command.command("reject")
@click.argument("approval_id")
@click.option("--reason", default=None, help="Why (the client sees it, and the trace and the ledger keep it).")
@click.pass_context
def reject(ctx: click.Context, approval_id: str, reason: str | None) -> None:
    """Refuse a pending request: its client gets a 403 in its API's schema."""
    _decide(ctx, approval_id, "reject", reason)
