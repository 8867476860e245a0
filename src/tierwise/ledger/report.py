"""Savings reports over the ledger: requests, tokens, cost and what the reference frontier
model would have cost, grouped by route, model or day.

A request whose cost is unknown (a remote model with no price data and no `price` in the
config) is counted as such and left out of the cost, the reference cost and the savings: an
unknown price is never $0, so it never shows as money saved. Chat requests and ensemble runs
are reported; `savings_report` is the one implementation the CLI and the MCP tool share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from tierwise.ledger.store import Ledger

GroupBy = Literal["route", "model", "day", "locality", "feature"]

_KEYS: dict[str, str] = {
    "route": "route",
    "model": "COALESCE(decision, '(none)')",
    "day": "date(ts, 'unixepoch')",
    "locality": "CASE WHEN kind IN ('eval', 'shadow') THEN '(evaluation)' ELSE COALESCE(locality, '(none)') END",
    "feature": "COALESCE(feature, '(none)')",
}


@dataclass(slots=True)
class ReportRow:
    key: str
    requests: int
    errors: int
    local_share: float  # answered by a local model
    input_tokens: int
    output_tokens: int
    cost_usd: float  # of the requests whose cost is known
    reference_cost_usd: float
    savings_usd: float
    savings_pct: float | None
    p50_latency_ms: float | None
    unknown_cost: int = 0  # requests whose cost is unknown: in no money figure of this row

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# What a report counts: requests clients sent (embeddings calls to a remote model included: kind `embeddings`,
# their reference cost their own) and ensemble runs. The learning they cause adds its cost:
# a learned route's shadow runs, and a reflective route's evaluations (judge calls and shadow runs), so a
# route's saving is net of what finding the boundary cost.
REPORTED_KINDS = ("chat", "ensemble", "embeddings")


# Every prompt token, cached ones included, as `trace` and `requests` count them: the ledger keeps
# uncached input, cache reads and cache writes apart (Anthropic's way), and a cached prompt must not
# read as a few tokens.
_ALL_INPUT = "input_tokens + COALESCE(cache_read_tokens, 0) + COALESCE(cache_write_tokens, 0)"


def savings(ledger: Ledger, by: GroupBy = "route", *, since: float | None = None,
            until: float | None = None, kind: str | tuple[str, ...] | None = REPORTED_KINDS) -> list[ReportRow]:
    if by not in _KEYS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(_KEYS)}")
    key = _KEYS[by]
    where: list[str] = []
    args: list[object] = []
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if until is not None:
        where.append("ts < ?")
        args.append(until)
    if kind is not None:
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        # Shadow runs and evaluations are spend caused by the requests they follow: their cost counts,
        # nothing else.
        where.append(f"kind IN ({', '.join('?' * len(kinds))}, 'shadow', 'eval')")
        args.extend(kinds)
    w = (" WHERE " + " AND ".join(where)) if where else ""
    live = "kind NOT IN ('shadow', 'eval')"
    sql = (
        f"SELECT {key} AS k, SUM({live}) AS n, SUM({live} AND status >= 400) AS errors, "
        f"SUM({live} AND locality = 'local') AS local_n, SUM(CASE WHEN {live} THEN {_ALL_INPUT} END) AS tin, "
        f"SUM(CASE WHEN {live} THEN output_tokens END) AS tout, SUM(cost_usd) AS cost, "
        # What the frontier model would have cost for each live request whose own cost is known;
        # a request without a reference price saves nothing by definition: count its own cost.
        f"SUM(CASE WHEN {live} AND cost_usd IS NOT NULL THEN COALESCE(reference_cost_usd, cost_usd) ELSE 0 END) AS ref, "
        f"SUM({live} AND cost_usd IS NULL) AS unknown "
        f"FROM requests{w} GROUP BY k ORDER BY k"
    )
    rows = []
    for r in ledger.iter_rows(sql, args):
        lat = ledger.iter_rows(
            f"SELECT latency_ms FROM requests{w}{' AND ' if w else ' WHERE '}{live} AND {key} = ? ORDER BY latency_ms",
            [*args, r["k"]],
        )
        p50 = lat[len(lat) // 2]["latency_ms"] if lat else None
        cost, ref = float(r["cost"] or 0), float(r["ref"] or 0)
        rows.append(ReportRow(
            key=str(r["k"]), requests=int(r["n"] or 0), errors=int(r["errors"] or 0),
            local_share=(r["local_n"] or 0) / r["n"] if r["n"] else 0.0,
            input_tokens=int(r["tin"] or 0), output_tokens=int(r["tout"] or 0),
            cost_usd=cost, reference_cost_usd=ref, savings_usd=ref - cost,
            savings_pct=(ref - cost) / ref * 100 if ref > 0 else None, p50_latency_ms=p50,
            unknown_cost=int(r["unknown"] or 0),
        ))
    return rows


def totals(rows: list[ReportRow]) -> ReportRow:
    n = sum(r.requests for r in rows)
    cost = sum(r.cost_usd for r in rows)
    ref = sum(r.reference_cost_usd for r in rows)
    return ReportRow(
        key="total", requests=n, errors=sum(r.errors for r in rows),
        local_share=sum(r.local_share * r.requests for r in rows) / n if n else 0.0,
        input_tokens=sum(r.input_tokens for r in rows), output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=cost, reference_cost_usd=ref, savings_usd=ref - cost,
        savings_pct=(ref - cost) / ref * 100 if ref > 0 else None, p50_latency_ms=None,
        unknown_cost=sum(r.unknown_cost for r in rows),
    )


def unpriced_models(ledger: Ledger, *, since: float | None = None) -> list[str]:
    """The models that answered requests of unknown cost (the ones to give a `price`)."""
    sql = "SELECT DISTINCT COALESCE(decision, model, '(none)') AS m FROM requests WHERE cost_usd IS NULL"
    args: list[object] = []
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    return sorted(str(r["m"]) for r in ledger.iter_rows(sql + " LIMIT 50", args))


def savings_report(ledger: Ledger, by: GroupBy = "route", *, since: float | None = None) -> dict[str, Any]:
    """The report as data: rows, the total, and the requests whose cost is unknown."""
    rows = savings(ledger, by, since=since)
    total = totals(rows)
    return {"by": by, "rows": [r.to_dict() for r in rows], "total": total.to_dict(),
            "unknown_cost": {"requests": total.unknown_cost,
                             "models": unpriced_models(ledger, since=since) if total.unknown_cost else []}}
