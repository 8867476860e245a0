"""`tierwise trace <request-id>` (or `--last`): every step one request took, from the ledger."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from tierwise.commands._common import config_option, load_or_exit, open_existing_ledger


def tokens_text(inp: int, out: int, cache_read: int = 0, cache_write: int = 0) -> str:
    """`1352 in (1351 cached) / 8 out`: input counts every prompt token, cached ones included.

    The ledger (like Anthropic's usage) keeps uncached input, cache reads and cache writes apart;
    shown as one input figure, a prompt served from the cache no longer reads as 1 token."""
    total = inp + cache_read + cache_write
    parts = [f"{cache_read} cached"] if cache_read else []
    if cache_write:
        parts.append(f"{cache_write} written to cache")
    return f"{total} in{' (' + ', '.join(parts) + ')' if parts else ''} / {out} out"


def _step_tokens(u: Any) -> str:
    if not isinstance(u, dict) or not u:
        return ""
    cr, cw = u.get("cache_read_tokens") or 0, u.get("cache_write_tokens") or 0
    total = (u.get("input_tokens") or 0) + cr + cw
    cached = f" ({cr} cached)" if cr else ""
    return f"{total}{cached}/{u.get('output_tokens', 0)}"


@click.command("trace")
@config_option
@click.argument("request_id", required=False)
@click.option("--last", is_flag=True, help="The most recent request (see `tierwise requests` for others).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, request_id: str | None, last: bool, as_json: bool) -> None:
    """Show the route, decision, reason and each step (calls, verdicts, decisions) of one request."""
    import orjson
    from rich.table import Table
    from rich.text import Text

    from tierwise.commands.terminal_text import inert, inert_json, plain_console
    from tierwise.secret_scrub import register_config, scrub_value

    if (request_id is None) == (not last):
        raise click.UsageError("give a REQUEST_ID or --last (not both)")
    cfg = load_or_exit(config_path, allow_starter=True)
    register_config(cfg)  # rows written before secrets were scrubbed are scrubbed as they are shown
    ledger = open_existing_ledger(cfg)
    if last:
        recent = ledger.recent(limit=1)
        rec = recent[0] if recent else None
    else:
        rec = ledger.get(request_id or "")
    ledger.close()
    if rec is None:
        what = "requests" if last else f"request {request_id!r}"
        click.echo(f"tierwise: no {what} in the ledger at {ledger.path}", err=True)
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
    if rec.requested_model is not None:
        c.print(f"asked for: {inert(rec.requested_model)}")
    c.print(f"answered by: {inert(rec.decision or '-')} ({inert(rec.locality or '-')}){_where(rec)}  "
            f"reason: {inert(rec.reason or '-')}")
    cost = "unknown (no price for a model it used)" if rec.cost_usd is None else f"${rec.cost_usd:.6f}"
    ref = ("" if rec.reference_cost_usd is None
           else f"  (reference {inert(rec.reference_model)}: ${rec.reference_cost_usd:.6f})")
    c.print(f"tokens: {tokens_text(rec.input_tokens, rec.output_tokens, rec.cache_read_tokens, rec.cache_write_tokens)}"
            f"  cost: {cost}{ref}")
    if rec.error_message:
        c.print(f"error: {inert(rec.error_kind)}: {inert(rec.error_message)}")
    t = Table()
    for col in ("#", "kind", "name", "ok", "status", "ms", "tokens in/out", "cost $", "reason"):
        t.add_column(col)
    for i, s in enumerate(rec.steps, 1):
        ok = s.get("ok")
        t.add_row(
            str(i), inert(s.get("kind", "")), inert(s.get("name", "")), "-" if ok is None else ("yes" if ok else "no"),
            inert(s.get("status", "")),
            f"{s['latency_ms']:.0f}" if isinstance(s.get("latency_ms"), (int, float)) else "",
            _step_tokens(s.get("usage")),
            f"{s['cost']:.6f}" if isinstance(s.get("cost"), (int, float))
            else ("unknown" if s.get("kind") == "call" and ok and s.get("usage") else ""), inert(s.get("reason", "")),
        )
    c.print(t)


def _where(rec: Any) -> str:
    """The upstream model id, and the worker when a capability route's task ran on one: the
    deployment name alone (`classify`) does not say which machine and model answered."""
    from tierwise.commands.terminal_text import inert

    worker = next((s["detail"]["worker"] for s in reversed(rec.steps) if s.get("kind") == "call" and s.get("ok")
                   and isinstance(s.get("detail"), dict) and s["detail"].get("worker")), None)
    parts = ([f"model {inert(rec.model)}"] if rec.model else []) + ([f"worker {inert(worker)}"] if worker else [])
    return "".join(", " + p for p in parts)
