"""What a learning route's background work did, for the message of an assertion about it (session 33, flakes33).

An assertion that an upstream double saw a shadow run's or a judge's call said only `assert False` when it failed
(CI, once): the route's log lines, its dropped count and the ledger's shadow pairs tell which branch was taken (the
other tier failed, the judge was withheld or failed, the run was dropped, ...). `story(...)` gathers them.
"""

from __future__ import annotations

import json
import logging
from typing import Any


def story(g: Any, route: Any, caplog: Any, *ups: Any) -> str:
    """The route's log lines (`tierwise`, INFO and up: the test calls `tell` first), its background count and
    drops, the ledger's shadow pairs and evaluations of the route and, per double, the start of each call it got."""
    lines = ["route log:"]
    lines += [f"  {r.levelname} {r.getMessage()}" for r in caplog.records if r.name.startswith("tierwise")]
    lines.append(f"in flight {len(route._background)}, dropped {getattr(route, 'dropped', '?')}")
    try:
        g.flush()
        for rec in g.ledger.query(route=route.name):
            if rec.kind not in ("shadow", "eval"):
                continue
            # a learned route's shadow pair, or a reflective route's evaluation
            pair = dict((rec.shadow if rec.kind == "shadow" else (rec.extra or {}).get("evaluation")) or {})
            for side in ("strong", "weak"):
                if isinstance(pair.get(side), dict):
                    pair[side] = {k: v for k, v in pair[side].items() if k != "answer"}
            lines.append(f"{rec.kind} record: " + json.dumps({k: v for k, v in pair.items() if k != "prompt"},
                                                             default=str))
    except Exception as e:  # the story must not hide the assertion it explains
        lines.append(f"(ledger not read: {type(e).__name__}: {e})")
    for up in ups:
        for r in list(up.requests):
            lines.append(f"{type(up).__name__} {r.path} {r.status}: {json.dumps(r.body)[:160]}")
    return "\n".join(lines)


def tell(caplog: Any) -> None:
    """Keep the `tierwise` logger's INFO lines for `story` (restored after the test by caplog)."""
    caplog.set_level(logging.INFO, logger="tierwise")
