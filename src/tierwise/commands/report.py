"""`tierwise report`: savings by route, model, day, locality or feature, from the ledger."""

from __future__ import annotations

import time

import click
import orjson
from rich.table import Table

from tierwise.commands._common import config_option, load_or_exit, open_ledger
from tierwise.commands.terminal_text import inert, inert_json, plain_console
from tierwise.ledger.report import savings, totals


@click.command("report")
@config_option
@click.option("--by", "by", type=click.Choice(["route", "model", "day", "locality", "feature"]), default="route",
              show_default=True)
@click.option("--days", type=float, default=None, help="Only the last N days.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, by: str, days: float | None, as_json: bool) -> None:
    """Savings: what was spent, and what the reference frontier model would have cost."""
    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_ledger(cfg)
    since = time.time() - days * 86400 if days else None
    rows = savings(ledger, by, since=since)  # type: ignore[arg-type]
    total = totals(rows)
    ledger.close()
    if as_json:
        click.echo(inert_json(orjson.dumps({"by": by, "rows": [r.to_dict() for r in rows], "total": total.to_dict()},
                                           option=orjson.OPT_INDENT_2).decode()))
        return
    t = Table(title=f"tierwise savings by {by}")
    for col in (by, "requests", "errors", "local", "tokens in", "tokens out", "cost $", "reference $", "saved $",
                "saved %", "p50 ms"):
        t.add_column(col, justify="left" if col == by else "right")
    for r in [*rows, total]:
        t.add_row(
            inert(r.key), str(r.requests), str(r.errors), f"{r.local_share:.0%}", f"{r.input_tokens:,}",
            f"{r.output_tokens:,}", f"{r.cost_usd:.4f}", f"{r.reference_cost_usd:.4f}", f"{r.savings_usd:.4f}",
            "-" if r.savings_pct is None else f"{r.savings_pct:.1f}",
            "-" if r.p50_latency_ms is None else f"{r.p50_latency_ms:.0f}",
            end_section=r is rows[-1] if rows else False,
        )
    plain_console().print(t)  # keys are ledger text (feature tags come from clients): no markup
    if not rows:
        click.echo(f"(the ledger at {ledger.path} has no requests yet)")
