"""`tierwise report`: savings by route, model, day, locality or feature, from the ledger; `--by arm`
compares the arms of `split` routes (cost, latency, evaluations, with confidence intervals)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from tierwise.commands._common import config_option, load_or_exit, open_existing_ledger


@click.command("report")
@config_option
@click.option("--by", "by", type=click.Choice(["route", "model", "day", "locality", "feature", "arm"]),
              default="route", show_default=True, help="Group the requests by this (arm: an A/B test's arms).")
@click.option("--baseline", default=None, help="With --by arm: the arm the others are compared with "
              "(default: the first by name).")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None, help="Only the last N days.")
@click.option("--since", "since_text", default=None,
              help="Only since then: 30m, 2h, 7d, or a date (2026-01-31), as in `tierwise requests`.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also draw cost and savings over time, per route, into this PNG (needs matplotlib).")
def command(config_path: str, by: str, baseline: str | None, days: float | None, since_text: str | None,
            as_json: bool, plot_path: str | None) -> None:
    """Savings: what was spent, and what the reference frontier model would have cost (--by arm: A/B arms)."""
    import orjson
    from rich.table import Table

    from tierwise.budgets.report import budget_events
    from tierwise.commands.requests import parse_since
    from tierwise.commands.terminal_text import inert, inert_json, plain_console
    from tierwise.ledger.report import ReportRow, savings_report

    if days is not None and since_text is not None:
        raise click.UsageError("give --days or --since, not both")
    since = time.time() - days * 86400 if days is not None else parse_since(since_text) if since_text else None
    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_existing_ledger(cfg)
    if by == "arm":
        from tierwise.commands._report_arms import render
        from tierwise.ledger.arm_report import arm_report

        arms = arm_report(ledger, since=since, baseline=baseline)
        ledger.close()
        if as_json:
            click.echo(inert_json(orjson.dumps(arms, option=orjson.OPT_INDENT_2).decode()))
        else:
            render(arms)
        return
    report = savings_report(ledger, by, since=since)  # type: ignore[arg-type]
    report["budgets"] = budget_events(ledger, since=since)
    if plot_path:
        _plot(ledger, since, plot_path)
    ledger.close()
    if as_json:
        click.echo(inert_json(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()))
        return
    rows = [ReportRow(**r) for r in report["rows"]]
    total = ReportRow(**report["total"])
    t = Table(title=f"tierwise savings by {by}")
    for col in (by, "requests", "errors", "local", "cost unknown", "tokens in", "tokens out", "cost $",
                "reference $", "saved $", "saved %", "p50 ms"):
        t.add_column(col, justify="left" if col == by else "right")
    for r in [*rows, total]:
        t.add_row(
            inert(r.key), str(r.requests), str(r.errors), f"{r.local_share:.0%}", str(r.unknown_cost),
            f"{r.input_tokens:,}", f"{r.output_tokens:,}", f"{r.cost_usd:.4f}", f"{r.reference_cost_usd:.4f}",
            f"{r.savings_usd:.4f}", "-" if r.savings_pct is None else f"{r.savings_pct:.1f}",
            "-" if r.p50_latency_ms is None else f"{r.p50_latency_ms:.0f}",
            end_section=r is rows[-1] if rows else False,
        )
    plain_console().print(t)  # keys are ledger text (feature tags come from clients): no markup
    if not rows and days is not None:
        click.echo(f"(no requests in the last {days:g} day(s) in the ledger at {ledger.path})")
    elif not rows and since_text is not None:
        click.echo(f"(no requests since {since_text} in the ledger at {ledger.path})")
    elif not rows:
        click.echo(f"(the ledger at {ledger.path} has no requests yet)")
    for name, ev in sorted(report["budgets"].items()):
        click.echo(f"budget {inert(name)}: {ev['refused']} request(s) refused, {ev['downgraded']} downgraded "
                   "to the local tier")
    unknown = report["unknown_cost"]
    if unknown["requests"]:
        models = ", ".join(inert(m) for m in unknown["models"])
        click.echo(f"{unknown['requests']} request(s) had an unknown cost (no price for: {models}); they are left "
                   "out of cost, reference and savings. Give those models a `price` in the config.")


def _plot(ledger: Any, since: float | None, path: str) -> None:
    from tierwise.observability.plot import PlotUnavailable, plot, series

    try:
        plot(series(ledger, since), path)
    except PlotUnavailable as e:
        ledger.close()
        click.echo(f"tierwise: {e}", err=True)
        sys.exit(1)
    click.echo(f"tierwise: wrote {path}", err=True)
