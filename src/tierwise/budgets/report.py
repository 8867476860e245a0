"""What budgets did, from the ledger: requests refused and downgraded per budget (for `tierwise report`)."""

from __future__ import annotations

from typing import Any

import orjson


def budget_events(ledger: Any, *, since: float | None = None) -> dict[str, dict[str, int]]:
    """{budget name: {"refused": n, "downgraded": m}} over the ledger's requests (since `since`)."""
    sql = "SELECT steps FROM requests WHERE steps LIKE '%\"name\":\"budget\"%'"
    args: list[Any] = []
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    out: dict[str, dict[str, int]] = {}
    with ledger._connect() as db:
        for (steps,) in db.execute(sql, args):
            for s in orjson.loads(steps or "[]"):
                if s.get("kind") != "decision" or s.get("name") != "budget":
                    continue
                d = s.get("detail") or {}
                row = out.setdefault(str(d.get("budget", "(store unavailable)")), {"refused": 0, "downgraded": 0})
                row["downgraded" if d.get("action") == "downgrade" else "refused"] += 1
    return out
