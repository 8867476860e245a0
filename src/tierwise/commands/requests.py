"""`tierwise requests`: the most recent requests in the ledger, newest first, with filters.

Clients such as Claude Code never show the response headers that carry a request's id; this
is where a person finds the id to give `tierwise trace`.
"""

from __future__ import annotations

import re
import time
from typing import Any

import click

from tierwise.commands._common import config_option, load_or_exit, open_existing_ledger

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str) -> float:
    """`30m`, `2h`, `7d`, `90s` ago, or an ISO date/time, as unix seconds."""
    m = _SINCE.match(value.strip())
    if m:
        return time.time() - float(m.group(1)) * _UNIT_S[m.group(2)]
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(f"{value!r}: use a duration like 30m, 2h, 7d, or a date like 2026-01-31") from None


def _status(value: str | None) -> str | None:
    if value is None or value in ("ok", "error") or (value.isdigit() and len(value) == 3):
        return value
    raise click.BadParameter(f"{value!r}: use ok, error or an HTTP status such as 503")


def _unknown_names(cfg: Any, route: str | None, model: str | None) -> str:
    """Why a filter may match nothing: a name the config does not have (a typo reads as "no traffic")."""
    import difflib

    from tierwise.commands.terminal_text import inert

    out = []
    for what, value, known in (("route", route, set(cfg.routes)), ("model", model, set(cfg.models))):
        if value is not None and value not in known and not (what == "model" and value in cfg.routes):
            close = difflib.get_close_matches(value, sorted(known), n=1)
            out.append(f"the config has no {what} {inert(value)!r}" + (f" (did you mean `{close[0]}`?)" if close
                                                                      else ""))
    return f": {'; '.join(out)}" if out else ""


@click.command("requests")
@config_option
@click.option("--route", default=None, help="Only this route.")
@click.option("--model", default=None, help="Only requests that asked for, or were answered by, this model.")
@click.option("--status", default=None, help="ok, error, or an HTTP status (e.g. 503).")
@click.option("--since", default=None, help="Only since then: 30m, 2h, 7d, or a date (2026-01-31).")
@click.option("--limit", "-n", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Show the newest N requests.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: a JSON array, one object per request, newest first.")
def command(config_path: str, route: str | None, model: str | None, status: str | None, since: str | None,
            limit: int, as_json: bool) -> None:
    """List recent requests (id, time, route, asked-for and answering model, status, tokens, cost)."""
    from datetime import datetime

    import orjson
    from rich.table import Table

    from tierwise.commands.terminal_text import inert, inert_json, plain_console
    from tierwise.commands.trace import tokens_text

    st = _status(status)
    since_ts = parse_since(since) if since else None
    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_existing_ledger(cfg)
    recs = ledger.recent(limit=limit, route=route, model=model, status=st, since=since_ts)
    ledger.close()
    if as_json:
        keys = ("request_id", "ts", "kind", "route", "requested_model", "decision", "model", "locality", "status",
                "stream", "error_kind", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                "cost_usd", "latency_ms")
        rows = [{k: getattr(r, k) for k in keys} for r in recs]
        click.echo(inert_json(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()))
        return
    if not recs:
        click.echo("no requests match" + _unknown_names(cfg, route, model) if any((route, model, status, since))
                   else f"no requests in the ledger at {ledger.path} yet")
        return
    t = Table(title="recent requests (newest first; `tierwise trace ID` for the steps)")
    for col in ("id", "time", "route", "asked for", "answered by", "status", "tokens", "cost $", "ms"):
        t.add_column(col, no_wrap=col in ("id", "time"))
    for r in recs:
        t.add_row(
            inert(r.request_id), datetime.fromtimestamp(r.ts).isoformat(sep=" ", timespec="seconds"),
            inert(r.route), inert(r.requested_model or "-"),
            inert(f"{r.decision} ({r.locality or r.kind})" if r.decision else "-"),  # eval rows: "(eval)"
            str(r.status) + (f" {inert(r.error_kind)}" if r.error_kind else ""),
            tokens_text(r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens),
            "unknown" if r.cost_usd is None else f"{r.cost_usd:.6f}", f"{r.latency_ms:.0f}",
        )
    plain_console().print(t)
