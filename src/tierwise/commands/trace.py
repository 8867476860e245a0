"""`tierwise trace <request-id>`: every step one request took, from the ledger."""

from __future__ import annotations

import sys
from datetime import datetime

import click
import orjson
from rich.console import Console
from rich.table import Table

from tierwise.commands._common import config_option, load_or_exit, open_ledger


@click.command("trace")
@config_option
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, request_id: str, as_json: bool) -> None:
    """Show the route, decision, reason and each step (calls, verdicts, decisions) of one request."""
    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_ledger(cfg)
    rec = ledger.get(request_id)
    ledger.close()
    if rec is None:
        click.echo(f"tierwise: no request {request_id!r} in the ledger at {ledger.path}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(orjson.dumps(rec.to_dict(), option=orjson.OPT_INDENT_2, default=str).decode())
        return
    c = Console()
    when = datetime.fromtimestamp(rec.ts).isoformat(timespec="seconds")
    c.print(f"[bold]{rec.request_id}[/] {when}  route [bold]{rec.route}[/]  status {rec.status}  "
            f"{'stream ' if rec.stream else ''}{rec.latency_ms:.0f} ms")
    c.print(f"answered by: {rec.decision or '-'} ({rec.locality or '-'})  reason: {rec.reason or '-'}")
    cost = "-" if rec.cost_usd is None else f"${rec.cost_usd:.6f}"
    ref = "" if rec.reference_cost_usd is None else f"  (reference {rec.reference_model}: ${rec.reference_cost_usd:.6f})"
    c.print(f"tokens in/out: {rec.input_tokens}/{rec.output_tokens}  cost: {cost}{ref}")
    if rec.error_message:
        c.print(f"error: {rec.error_kind}: {rec.error_message}")
    t = Table()
    for col in ("#", "kind", "name", "ok", "status", "ms", "tokens", "cost $", "reason"):
        t.add_column(col)
    for i, s in enumerate(rec.steps, 1):
        u = s.get("usage") or {}
        ok = s.get("ok")
        t.add_row(
            str(i), s["kind"], s["name"], "-" if ok is None else ("yes" if ok else "no"), str(s.get("status", "")),
            f"{s['latency_ms']:.0f}" if s.get("latency_ms") is not None else "",
            f"{u.get('input_tokens', 0)}/{u.get('output_tokens', 0)}" if u else "",
            f"{s['cost']:.6f}" if s.get("cost") is not None else "", s.get("reason", ""),
        )
    c.print(t)
