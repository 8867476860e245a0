"""`tierwise feedback <request-id> <rating>`: record a rating of an answer in the ledger."""

from __future__ import annotations

import click

from tierwise.commands._common import config_option, load_or_exit, open_existing_ledger

# a learned route reads no rating (its evidence is its `validation` judge's shadow pairs): say so where a rating of one
# is given, rather than let a user believe a thumbs-down moved its routing
LEARNED_RATINGS = ("note: route {route} is a learned route: it keeps the rating in the ledger (`tierwise boundary` "
                   "counts them) but does not route by ratings; its evidence is the shadow pairs its `validation` "
                   "judge grades (docs/routers.md#online-validation)")


@click.command("feedback")
@config_option
@click.argument("request_id")
@click.argument("rating", type=click.Choice(["good", "acceptable", "poor", "up", "down"], case_sensitive=False))
@click.option("--reason", default=None, help="Why (kept with the rating; secrets are scrubbed, and with a "
              "`privacy:` section protected values are replaced as in the rest of the ledger).")
def command(config_path: str, request_id: str, rating: str, reason: str | None) -> None:
    """Rate an answer (good, acceptable, poor, or thumbs up/down), linked to its route, task type, tier and model."""
    from tierwise.errors import TierwiseError
    from tierwise.learning.feedback import parse_feedback, record_feedback

    cfg = load_or_exit(config_path, allow_starter=True)
    ledger = open_existing_ledger(cfg)
    if cfg.privacy is not None and reason:
        # The same cleaning as the gateway's feedback endpoint (Ledger.annotate -> seal_record), from the
        # config alone: the detector and the protected classes, no mapping store, no upstream.
        import functools

        from tierwise.privacy.audit import seal_record
        from tierwise.privacy.text_cleaning import LedgerCleaner

        try:
            ledger.seal = functools.partial(seal_record, LedgerCleaner(cfg.privacy))
        except TierwiseError as e:  # e.g. the NER extra required but missing: say so, write nothing
            ledger.close()
            raise click.ClickException(f"cannot clean the reason as `privacy:` asks: {e.message}") from None
    try:
        rid, norm, why = parse_feedback({"request_id": request_id, "rating": rating, "reason": reason})
        linked = record_feedback(ledger, rid, norm, why, source="cli")
    except TierwiseError as e:
        raise click.ClickException(e.message) from None
    finally:
        ledger.close()
    click.echo(f"recorded {linked['rating']} for {rid}: route {linked['route']}, task type "
               f"{linked['task_type'] or '-'}, tier {linked['tier'] or '-'}, model {linked['model'] or '-'}")
    if getattr(cfg.routes.get(linked["route"]), "policy", None) == "learned":
        click.echo(LEARNED_RATINGS.format(route=linked["route"]))
    if getattr(cfg.routes.get(linked["route"]), "policy", None) == "reflective" and linked["tier"] == "local":
        # The running route learns of a rating only from its own endpoint: this wrote the ledger row, nothing more.
        click.echo(f"note: only the ledger has this rating. Route {linked['route']} (reflective) counts a rating, or has "
                   "its judge look at a poor answer, only when it reaches the process serving it: POST "
                   "/v1/tierwise/feedback to the gateway, or `await Tierwise.feedback(...)` in an app that runs the "
                   "route as a library, with the same request id and rating (docs/learning.md#feedback)")
