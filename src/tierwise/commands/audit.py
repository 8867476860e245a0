"""`tierwise audit`: what crossed the privacy boundary, by route, class, destination, action or day;
`--request ID --prove` re-checks one request (tierwise.privacy.audit.prove)."""

from __future__ import annotations

import sys
import time

import click

from tierwise.commands._common import config_option, load_or_exit, open_existing_ledger


@click.command("audit")
@config_option
@click.option("--by", "by", type=click.Choice(["route", "class", "destination", "action", "day"]), default="route",
              show_default=True, help="Group the crossings of the privacy boundary by this.")
@click.option("--days", type=float, default=None, help="Only the last N days.")
@click.option("--request", "request_id", default=None, help="Show the crossings of one request.")
@click.option("--prove", is_flag=True, help="With --request: re-check that no detected value left.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, by: str, days: float | None, request_id: str | None, prove: bool,
            as_json: bool) -> None:
    """Privacy audit: every crossing of the boundary to a remote model (counts and hashes, never values)."""
    import orjson
    from rich.table import Table

    from tierwise.commands.terminal_text import inert, inert_json, plain_console
    from tierwise.privacy import audit

    if prove and request_id is None:  # it used to be ignored: the table printed as if proof had been given
        raise click.UsageError("--prove checks one request: add --request ID (`tierwise requests` lists them)")
    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_existing_ledger(cfg)
    try:
        if request_id is not None:
            rec = ledger.get(request_id)
            if rec is None:
                click.echo(f"tierwise: no request {inert(request_id)} in the ledger", err=True)
                sys.exit(1)
            rescan = protected = None
            if prove and cfg.privacy is not None:
                from tierwise.privacy.boundary import Boundary
                b = Boundary(cfg.privacy, base_dir=cfg.base_dir)
                rescan, protected = b.scan, b.protected
                b.close()
            ok, lines = (audit.prove(rec, rescan, protected or frozenset()) if prove
                         else (True, [orjson.dumps(c, option=orjson.OPT_INDENT_2).decode()
                                      for c in rec.privacy or []] or ["no crossing recorded"]))
            if as_json:
                click.echo(inert_json(orjson.dumps({"request_id": request_id, "ok": ok, "crossings": rec.privacy,
                                                    "checks": lines}, option=orjson.OPT_INDENT_2).decode()))
            else:
                for line in lines:  # crossings are indented JSON (its newlines kept), proof lines plain text
                    click.echo(inert(line) if prove else inert_json(line))
                if prove:
                    click.echo("PROVED: no detected value of a protected class left" if ok else "NOT PROVED")
            if prove and not ok:
                sys.exit(1)
            return
        since = time.time() - days * 86400 if days else None
        recs = [r for r in ledger.query(since=since) if r.privacy]
        rows = audit.report(recs, by)
    finally:
        ledger.close()
    if as_json:
        click.echo(inert_json(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()))
        return
    t = Table(title=f"tierwise privacy audit by {by}")
    cols = (by, "requests", "crossings", "sent", "refused", "blocked", "detected", "redacted", "kept", "bytes out")
    for col in cols:
        t.add_column(col, justify="left" if col == by else "right")
    for r in rows:
        t.add_row(inert(str(r[by])), *(f"{r[k.replace(' ', '_')]:,}" for k in cols[1:-1]), f"{r['bytes_out']:,}")
    plain_console().print(t)
    if not rows:
        click.echo("(no crossing of the privacy boundary is recorded yet)")
