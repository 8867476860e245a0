"""`tierwise report --plot out.png`: cost and savings over time, per route, from the ledger.

matplotlib is an optional extra (`pip install 'tierwise[plot]'`); without it the command says so.
"""

from __future__ import annotations

from typing import Any

MAX_ROUTES = 12  # more lines than this is unreadable: the rest are summed as "other"

SQL = ("SELECT ts, route, cost_usd, reference_cost_usd FROM requests WHERE kind IS NOT 'shadow'{since} "
       "ORDER BY ts")


class PlotUnavailable(Exception):
    pass


def series(ledger: Any, since: float | None = None) -> dict[str, list[tuple[float, float, float]]]:
    """Per route: (ts, cumulative cost, cumulative savings) after each request with a known cost."""
    rows = ledger.iter_rows(SQL.format(since=" AND ts >= ?" if since else ""), [since] if since else [])
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["route"]] = totals.get(r["route"], 0) + 1
    keep = set(sorted(totals, key=lambda k: -totals[k])[:MAX_ROUTES])
    out: dict[str, list[tuple[float, float, float]]] = {}
    acc: dict[str, tuple[float, float]] = {}
    for r in rows:
        if r["cost_usd"] is None:
            continue
        route = r["route"] if r["route"] in keep else "other"
        c, s = acc.get(route, (0.0, 0.0))
        c += r["cost_usd"]
        if r["reference_cost_usd"] is not None:
            s += r["reference_cost_usd"] - r["cost_usd"]
        acc[route] = (c, s)
        out.setdefault(route, []).append((r["ts"], c, s))
    return out


def plot(data: dict[str, list[tuple[float, float, float]]], path: str, title: str = "tierwise") -> None:
    fig = figure(data, title)  # first: it says when matplotlib is missing
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def figure(data: dict[str, list[tuple[float, float, float]]], title: str = "tierwise") -> Any:
    """The figure `plot` saves. Each request is a marked point on its route's steps, so a route with
    one request still shows; the time axis labels only as much of the date as its span needs."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'tierwise[plot]'") from None
    from datetime import datetime

    fig, (ax_cost, ax_saved) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for route, pts in sorted(data.items()):
        xs = [datetime.fromtimestamp(p[0]) for p in pts]
        ax_cost.step(xs, [p[1] for p in pts], where="post", label=route, marker=".")
        ax_saved.step(xs, [p[2] for p in pts], where="post", label=route, marker=".")
    ax_cost.set_ylabel("spent, cumulative (USD)")
    ax_saved.set_ylabel("saved vs reference, cumulative (USD)")
    ax_cost.set_title(f"{title}: cost and savings over time, per route")
    for ax in (ax_cost, ax_saved):
        ax.grid(True, alpha=0.3)
        if data:
            ax.legend(loc="upper left", fontsize="small")
    locator = mdates.AutoDateLocator()
    ax_saved.xaxis.set_major_locator(locator)
    ax_saved.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # seconds apart: seconds shown
    fig.tight_layout()
    return fig
