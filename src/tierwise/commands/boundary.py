"""`tierwise boundary`: the tier of each task type on the reflective routes, the evidence, and the history;
and for learned routes, their online estimate from judged shadow pairs (evaluation/online.py)."""

from __future__ import annotations

from typing import Any

import click

from tierwise.commands._common import config_option, load_or_exit, open_ledger


@click.command("boundary")
@config_option
@click.option("--route", default=None, help="One reflective or learned route (default: all of them).")
@click.option("--history/--no-history", default=True, help="List every move with its evidence.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(config_path: str, route: str | None, history: bool, as_json: bool) -> None:
    """Show where each task type is served (local or frontier), the verdicts behind it, and every move."""
    from pathlib import Path

    import orjson

    from tierwise.commands.terminal_text import inert
    from tierwise.learning.evidence import boundary_table, moves

    cfg = load_or_exit(config_path, allow_starter=True)
    names = [n for n, pc in cfg.routes.items() if getattr(pc, "policy", None) == "reflective"]
    learned = [n for n, pc in cfg.routes.items() if getattr(pc, "policy", None) == "learned"]
    if route is not None:
        if route not in names + learned:
            raise click.ClickException(f"{route!r} is not a reflective route nor a learned one; reflective routes: "
                                       f"{', '.join(names) or 'none'}; learned routes: {', '.join(learned) or 'none'}")
        names = [route] if route in names else []
        learned = [route] if route in learned else []
    ledger = None
    if cfg.ledger.enabled and Path(cfg.ledger.resolved_path(cfg.base_dir)).exists():
        ledger = open_ledger(cfg)  # a file there that is not a ledger: a clear config error, no traceback
    try:
        out: dict[str, dict[str, Any]] = {n: {"task_types": boundary_table(cfg, ledger, n),
                   "history": [m.sentence() for m in moves(cfg, n)]} for n in names}
        from tierwise.evaluation.online import configured_estimates

        for n, est in configured_estimates(cfg, ledger).items():
            if n in learned:
                out[n] = {"online": est.as_dict(), "feedback": _ratings(ledger, n)}
    finally:
        if ledger is not None:
            ledger.close()
    if as_json:
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    if not names and not learned:
        click.echo("no reflective or learned routes in this config: a route with `policy: reflective` (local and "
                   "frontier targets, a judge) moves each task type between the tiers as verdicts come in, and this "
                   "shows where each is served and why (docs/learning.md)")
    for n, data in out.items():
        click.echo(f"route {inert(n)}:")
        if "online" in data:
            click.echo(f"  {inert(data['online']['sentence'])}")
            for tier, counts in sorted(data["feedback"].items()):
                click.echo(f"  feedback on {tier} answers: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                           + " (kept, not routed by: a learned route's evidence is its judged shadow pairs)")
            continue
        if not data["task_types"]:
            click.echo("  no evidence yet: every task type is on the frontier tier")
            if (blind := value_blind(cfg, n)) is not None:
                click.echo(f"  {blind}")
        for r in data["task_types"]:
            why = f"; {r['acceptance']['sentence']}" if "acceptance" in r else ""
            why += f"; {r['model']}" if "model" in r else ""
            blank = f" ({r['no_verdict']} judge repl{'y' if r['no_verdict'] == 1 else 'ies'} without a grade)" \
                if r.get("no_verdict") else ""
            seen = f"{r['requests']} request(s), " if "requests" in r else ""
            if seen and (local := r.get("local_requests", 0)) != (r["requests"] if r["tier"] == "local" else 0):
                seen = f"{r['requests']} request(s) ({local} answered locally), "  # e.g. within-type routing
            click.echo(f"  {inert(r['task_type']):<24} {r['tier']:<8} {seen}{r['good']} good of {r['judged']} judged"
                       f"{blank}, {r['moves']} move(s){why}")
        if (wait := value_wait(cfg, n, data["task_types"])) is not None:
            click.echo(f"  {wait}")
        blanks = sum(r.get("no_verdict", 0) for r in data["task_types"])
        if blanks:
            click.echo(f"  {blanks} judge repl{'y' if blanks == 1 else 'ies'} carried no grade, so they are not evidence: "
                       "the judge must end its reply with a line `VERDICT: good|acceptable|poor`; a model that does "
                       "not follow the rubric never moves a task type (see a reply with `tierwise requests` and "
                       "`tierwise trace ID`; `judge:` in the route picks another model)")
        if history and data["history"]:
            click.echo("  history:")
            for line in data["history"]:
                click.echo(f"    {inert(line)}")



def _ratings(ledger: Any, route: str) -> dict[str, dict[str, int]]:
    """Users' ratings of a learned route's answers, by the tier that answered: before session 38 `boundary` showed them
    for reflective routes only, so ratings given to a learned route appeared nowhere."""
    from tierwise.learning.evidence import feedback

    out: dict[str, dict[str, int]] = {}
    for f in feedback(ledger, route=route) if ledger is not None else ():
        by = out.setdefault(str(f.get("tier") or "unknown"), {})
        by[str(f.get("rating") or "unknown")] = by.get(str(f.get("rating") or "unknown"), 0) + 1
    return out


def value_wait(cfg: Any, route: str, rows: list[dict[str, Any]]) -> str | None:
    """Why task types the route has served have no verdict yet, under `sampling: value`: it judges an answer only
    when the verdict is worth more than it costs, so a new user's first requests (small, few, cheap on the
    frontier) are often served without any judging, and the table alone looked like a loop that was not running."""
    from tierwise.commands.terminal_text import inert
    from tierwise.learning.evidence import saved_file

    pc = cfg.routes.get(route)
    if getattr(pc, "policy", None) != "reflective" or pc.sampling != "value":
        return None
    waiting = [r["task_type"] for r in rows if r.get("requests") and not r["judged"] and not r.get("no_verdict")]
    if not waiting:
        return None
    costs = saved_file(cfg, route).get("costs") or {}
    measured = ""
    if isinstance(costs.get("frontier"), (int, float)) and isinstance(costs.get("judge"), (int, float)):
        measured = (f" (measured so far: a frontier answer ${costs['frontier']:.6f}, a judge call "
                    f"${costs['judge']:.6f})")
    # the judge is remote too: what the privacy boundary keeps local is served, never judged (docs/learning.md)
    kept = "; requests the `privacy:` rules keep local are never judged;" if cfg.privacy is not None else ";"
    return (f"{len(waiting)} type(s) served but not judged yet ({', '.join(inert(t) for t in waiting[:5])}): with "
            f"`sampling: value` an answer is judged only when the verdict is worth its cost over the route's next "
            f"`value.horizon` requests{measured}, so few or small requests may go unjudged for a while"
            f"{kept} "
            "`sampling: rules` judges the first 5 uses of every type (docs/learning.md)")


def value_blind(cfg: Any, route: str) -> str | None:
    """Why a reflective route with `sampling: value` never judges: its frontier tier has no known price, so a local
    answer saves $0 by its measure and no verdict is worth buying (every task type stays on the frontier, silently)."""
    from tierwise.commands.doctor_models import unpriced_names
    from tierwise.route_map import models_of

    pc = cfg.routes.get(route)
    if getattr(pc, "policy", None) != "reflective" or pc.sampling != "value" or pc.value.saving_usd is not None:
        return None
    unpriced = [m for m in models_of(cfg, pc.frontier) if m in set(unpriced_names(cfg))]
    if not unpriced:
        return None
    return (f"route {route}: its frontier tier ({', '.join(unpriced)}) has no known price, so by `sampling: value` a "
            "local answer saves $0 and no verdict is worth its cost: the route judges nothing and every task type "
            "stays on the frontier. Fix: a `price: {input: USD, output: USD}` on the model, or the route's "
            "`value: {saving_usd: ...}`, or `sampling: rules`")
