"""The text form of `tierwise report --by arm` (the figures come from tierwise.ledger.arm_report)."""

from __future__ import annotations

from typing import Any

import click


def _ci(ci: list[float] | None, fmt: str, scale: float = 1.0) -> str:
    return "" if not ci else f" [{ci[0] * scale:{fmt}}, {ci[1] * scale:{fmt}}]"


def _num(v: float | None, ci: list[float] | None, fmt: str, scale: float = 1.0) -> str:
    return "-" if v is None else f"{v * scale:{fmt}}{_ci(ci, fmt, scale)}"


def _share(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "-"
    return f"{s['share']:.1%} of {s['n']}" + _ci(s["ci95"], ".1f", 100).replace("]", "]%")


def render(report: dict[str, Any]) -> None:
    from rich.table import Table

    from tierwise.commands.terminal_text import inert, plain_console

    if not report["routes"]:
        click.echo("(no request in the ledger carries an arm: route traffic through a `split` policy)")
        return
    for r in report["routes"]:
        t = Table(title=f"route {inert(r['route'])}: arms (95% intervals in brackets)")
        for col in ("arm", "requests", "errors", "local", "cost $ total", "cost $ mean", "p50 ms", "p95 ms",
                    "verdicts passed", "feedback score", "rated good"):
            t.add_column(col, justify="left" if col == "arm" else "right")
        for a in r["arms"]:
            c, lat, fb = a["cost_usd"], a["latency_ms"], a["feedback"]
            t.add_row(inert(a["arm"]), str(a["requests"]), _share(a["errors"]), _share(a["local"]), f"{c['total']:.6f}",
                      _num(c["mean"], c["mean_ci95"], ".6f"), _num(lat["p50"], lat["p50_ci95"], ".0f"),
                      _num(lat["p95"], lat["p95_ci95"], ".0f"), _share(a["verdicts"]),
                      _num(fb["mean_score"], fb["mean_score_ci95"], ".2f"), _share(fb["good"]))
        plain_console().print(t)
        for d in r["differences"]:
            parts = [
                f"mean cost {_num(d['mean_cost_usd']['diff'], d['mean_cost_usd']['ci95'], '+.6f')} $",
                f"p50 {_num(d['latency_p50_ms']['diff'], d['latency_p50_ms']['ci95'], '+.0f')} ms",
                f"p95 {_num(d['latency_p95_ms']['diff'], d['latency_p95_ms']['ci95'], '+.0f')} ms",
                f"errors {_num(d['error_share']['diff'], d['error_share']['ci95'], '+.1f', 100)} pts",
                f"local {_num(d['local_share']['diff'], d['local_share']['ci95'], '+.1f', 100)} pts",
                f"verdicts passed {_num(d['verdict_pass_share']['diff'], d['verdict_pass_share']['ci95'], '+.1f', 100)} pts",
                f"feedback score {_num(d['feedback_mean_score']['diff'], d['feedback_mean_score']['ci95'], '+.2f')}",
            ]
            click.echo(f"{inert(d['arm'])} - {inert(d['baseline'])}: " + "; ".join(parts))
