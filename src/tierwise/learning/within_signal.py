"""The request-level signal a reflective route gives `within` (learning/within.py): what ranks a task type's
requests from easier to harder before any model runs.

`within.signal: length` (the default) is the log of the prompt's length: free, and on the recorded replay right in
sign on most types but decided per type from a few dozen verdicts. `within.signal: router` is the score of a saved
router (`within.router`, a file `tierwise eval ... --save` wrote; issue 22's `transfer` is the router meant to be
trained on public data and used on other traffic): a ranking learned from many labelled questions elsewhere, whose
direction and strength on each type the type's own verdicts still fit (the slope), as they do for the length. A
request the router fails to score (an error, a non-finite score) gets no signal: it takes its type's estimate.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from tierwise.errors import ConfigError

if TYPE_CHECKING:
    from tierwise.canonical import Request
    from tierwise.learning.within import WithinSettings
    from tierwise.routers.base import Router

log = logging.getLogger(__name__)


class RequestSignal:
    def __init__(self, router: Router | None = None) -> None:
        self.router = router

    def of(self, req: Request) -> float | None:
        if self.router is None:
            return math.log1p(sum(len(m.text()) for m in req.messages))
        try:
            score = float(self.router.score_text("\n".join(m.text() for m in req.messages)))
        except Exception as e:  # a broken router must not fail the request: the type's estimate decides
            log.warning("within-type signal: the router failed to score a request (%s)", type(e).__name__)
            return None
        return score if math.isfinite(score) else None


def request_signal(settings: WithinSettings, base_dir: str | Path, route: str) -> RequestSignal:
    """The route's signal; a `router` that cannot be loaded is a configuration error naming the key."""
    if settings.signal != "router" or not settings.enabled:
        return RequestSignal()
    from tierwise.routers.base import RouterError, load_router

    path = Path(settings.router or "")
    if not path.is_absolute():
        path = Path(base_dir) / path
    try:
        return RequestSignal(load_router(path))
    except RouterError as e:
        raise ConfigError(f"route {route!r}: {e}", path=f"routes.{route}.within.router") from None


__all__ = ["RequestSignal", "request_signal"]
