"""A learning route's evaluation as a ledger record of kind `eval`: the judge's verdict and reasoning, what it cost
(the judge call and any shadow run, apart from serving), and with `ledger.store_text` the texts the flywheel reads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tierwise.trace import Trace

log = logging.getLogger("tierwise")


def record_evaluation(services: Any, trace: Trace, evaluation: dict[str, Any], prompt: str | None, answer: str,
                      frontier_answer: str | None) -> None:
    """One `eval` ledger record (its cost is the evaluation's: judge call and any shadow run)."""
    ledger = getattr(services, "ledger", None)
    if ledger is None:
        return
    from tierwise.ledger.records import record_from_trace

    store_text = bool(getattr(getattr(getattr(services, "cfg", None), "ledger", None), "store_text", False))
    extra: dict[str, Any] = {"evaluation": evaluation}
    if store_text:  # the flywheel's material; kept only where the config keeps request text
        extra["local_answer"] = answer
        if frontier_answer is not None:
            extra["frontier_answer"] = frontier_answer
    submit_spent(services, ledger, lambda: record_from_trace(
        trace, ts=time.time(), kind="eval", decision=evaluation["judge"], prompt=prompt if store_text else None,
        extra=extra), "the evaluation of %s", evaluation.get("of"))


def submit_spent(services: Any, ledger: Any, make: Callable[[], Any], what: str, of: Any) -> None:
    """The record `make()` builds submitted to `ledger`, its cost counted as learning spend; a failure is logged
    ("ledger: could not record " + `what` % `of`), never raised into the route."""
    try:
        rec = make()
        ledger.submit(rec)
        observer = getattr(services, "observer", None)
        if observer is not None:
            observer.learning_spent(rec.cost_usd)
    except Exception:
        log.exception("ledger: could not record " + what, of)
