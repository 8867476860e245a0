"""`tierwise flywheel export|candidates`: training data from the learning loop's evidence, and what to fine-tune."""

from __future__ import annotations

import click

from tierwise.commands._common import WholeSummaryGroup, config_option, load_or_exit, open_existing_ledger


def _check_route(cfg: object, ledger: object, route: str | None) -> None:
    """A misspelt --route must not read as "nothing judged yet": it is an error, unless the ledger
    holds evaluations of it (a route since removed from the config)."""
    from tierwise.learning.evidence import verdicts

    routes = getattr(cfg, "routes", {}) or {}
    if route is None or route in routes or next(verdicts(ledger, route=route), None) is not None:
        return
    known = ", ".join(sorted(routes)[:20]) or "none"
    raise click.ClickException(f"no evaluations of route {route!r} in the ledger, and the config has no such "
                               f"route (routes: {known})")


@click.group("flywheel", cls=WholeSummaryGroup)
def command() -> None:
    """Turn judged answers into training data (SFT, DPO pairs, judge triples) and list fine-tuning candidates."""


@command.command("export")
@config_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the JSONL files.")
@click.option("--route", default=None, help="Only this route's evaluations.")
@click.option("--redact/--no-redact", default=True, help="Replace personal data (when the detector is installed).")
def export_cmd(config_path: str, out_dir: str, route: str | None, redact: bool) -> None:
    """Write sft.jsonl, dpo.jsonl, judge.jsonl and manifest.json from the judged evaluations in the ledger."""
    from tierwise.learning.flywheel import export

    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_existing_ledger(cfg)
    try:
        _check_route(cfg, ledger, route)
        m = export(ledger, out_dir, route=route, redact_pii=redact, privacy=getattr(cfg, "privacy", None))
    finally:
        ledger.close()
    c = m["counts"]
    click.echo(f"wrote {c['sft']} SFT examples, {c['dpo']} preference pairs, {c['judge']} judge triples to {out_dir} "
               f"({m['redaction']})")
    if m.get("replaced"):  # a country or a company is replaced too (phi's LOCATION, customer's ORGANIZATION)
        what = ", ".join(f"{n:,} {entity}" for entity, n in list(m["replaced"].items())[:8])
        click.echo(f"replaced: {what}{', ...' if len(m['replaced']) > 8 else ''} (the counts are in manifest.json; "
                   "`--no-redact` keeps personal data; which classes are redacted: docs/learning.md#the-flywheel)")
    if c.get("from_shadow_pairs"):
        click.echo(f"{c['from_shadow_pairs']} of them from learned routes' shadow pairs graded by their `validation` "
                   "judge")
    if c.get("dpo_skipped_same_answer"):
        click.echo(f"{c['dpo_skipped_same_answer']} preference pairs left out: both answers were the same text, "
                   "graded apart by the judge (nothing for a preference trainer to learn but the judge's noise)")
    if c["skipped_without_text"]:
        click.echo(f"{c['skipped_without_text']} evaluations had no text (set `ledger.store_text: true` to keep it)")
    if not (c["sft"] or c["dpo"] or c["judge"] or c["skipped_without_text"] or c["skipped_without_verdict"]):
        click.echo("nothing to export: the ledger holds no judged answers. The files are filled from the judge's "
                   "verdicts of a `policy: reflective` route and from a learned route's shadow pairs graded by its "
                   "`validation` judge; ratings (`tierwise feedback`, POST /v1/tierwise/feedback) are not exported "
                   "themselves (a `poor` POSTed on a reflective route's local answer has its judge grade it). "
                   "docs/learning.md#the-flywheel")
    if c["skipped_without_verdict"]:
        click.echo(f"{c['skipped_without_verdict']} evaluations had no verdict: the judge's reply named no grade "
                   "(it must end with `VERDICT: good|acceptable|poor`: check the route's judge model and `rubric`; "
                   "`tierwise trace <request-id>-eval` shows each evaluation)")


@command.command("candidates")
@config_option
@click.option("--route", default=None, help="Only this route's evaluations.")
@click.option("--min-poor", default=3, show_default=True, type=click.IntRange(2, 1000),
              help="Poor verdicts sharing a failure mode that make a task type a candidate.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def candidates_cmd(config_path: str, route: str | None, min_poor: int, as_json: bool) -> None:
    """Task types with several poor verdicts sharing a failure mode: candidates for fine-tuning (nothing is trained)."""
    import orjson

    from tierwise.commands.terminal_text import inert
    from tierwise.learning.flywheel import candidates

    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_existing_ledger(cfg)
    try:
        _check_route(cfg, ledger, route)
        found = candidates(ledger, route=route, min_poor=min_poor)
    finally:
        ledger.close()
    if as_json:
        click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        click.echo(f"no task type has {min_poor} or more poor verdicts sharing a failure mode")
    for c in found:
        of = f" (of its latest {c['of_latest']:,} of {c['poor_total']:,})" if c["poor_total"] > c["of_latest"] else ""
        click.echo(f"{inert(c['task_type'])}: {c['poor_verdicts']} poor verdicts{of} about {inert(c['failure_mode'])}")
        for ex in c["examples"]:
            click.echo(f"  {inert(ex['request_id'])}: {inert(ex['reason'])}")
