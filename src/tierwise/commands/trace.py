"""`tierwise trace <request-id>`: every step one request took, from the ledger."""

from __future__ import annotations

import sys
from datetime import datetime

import click
import orjson
from rich.table import Table
from rich.text import Text

from tierwise.commands._common import config_option, load_or_exit, open_ledger
from tierwise.commands.terminal_text import inert, inert_json, plain_console
from tierwise.secret_scrub import register_config, scrub_value


@click.command("trace")
@config_option
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, request_id: str, as_json: bool) -> None:
    """Show the route, decision, reason and each step (calls, verdicts, decisions) of one request."""
    cfg = load_or_exit(config_path, allow_starter=True)
    register_config(cfg)  # rows written before secrets were scrubbed are scrubbed as they are shown
    ledger = open_ledger(cfg)
    rec = ledger.get(request_id)
    ledger.close()
    if rec is None:
        click.echo(f"tierwise: no request {request_id!r} in the ledger at {ledger.path}", err=True)
        sys.exit(1)
    if as_json:
        data = scrub_value(rec.to_dict())
        click.echo(inert_json(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()))
        return
    # Every ledger field is text someone else wrote (client, upstream, model): printed inert.
    c = plain_console()
    when = datetime.fromtimestamp(rec.ts).isoformat(timespec="seconds")
    c.print(Text.assemble((inert(rec.request_id), "bold"), f" {when}  route ", (inert(rec.route), "bold"),
                          f"  status {rec.status}  {'stream ' if rec.stream else ''}{rec.latency_ms:.0f} ms"))
    c.print(f"answered by: {inert(rec.decision or '-')} ({inert(rec.locality or '-')})  "
            f"reason: {inert(rec.reason or '-')}")
    cost = "-" if rec.cost_usd is None else f"${rec.cost_usd:.6f}"
    ref = ("" if rec.reference_cost_usd is None
           else f"  (reference {inert(rec.reference_model)}: ${rec.reference_cost_usd:.6f})")
    c.print(f"tokens in/out: {rec.input_tokens}/{rec.output_tokens}  cost: {cost}{ref}")
    if rec.error_message:
        c.print(f"error: {inert(rec.error_kind)}: {inert(rec.error_message)}")
    t = Table()
    for col in ("#", "kind", "name", "ok", "status", "ms", "tokens", "cost $", "reason"):
        t.add_column(col)
    for i, s in enumerate(rec.steps, 1):
        u = s.get("usage") or {}
        ok = s.get("ok")
        t.add_row(
            str(i), inert(s.get("kind", "")), inert(s.get("name", "")), "-" if ok is None else ("yes" if ok else "no"),
            inert(s.get("status", "")),
            f"{s['latency_ms']:.0f}" if isinstance(s.get("latency_ms"), (int, float)) else "",
            f"{u.get('input_tokens', 0)}/{u.get('output_tokens', 0)}" if isinstance(u, dict) and u else "",
            f"{s['cost']:.6f}" if isinstance(s.get("cost"), (int, float)) else "", inert(s.get("reason", "")),
        )
    c.print(t)
