"""`tierwise top`: a live view of a running gateway in the terminal (its dashboard's main page).

It reads the gateway's dashboard endpoints (`observability.dashboard.enabled: true`), with an
admin key or a read-only viewer key from `--key` or $TIERWISE_KEY when the gateway wants one.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from tierwise.commands._common import config_option

KEY_ENV = "TIERWISE_KEY"


def _get(url: str, key: str | None) -> Any:
    import urllib.request

    import orjson

    from tierwise import no_redirects

    req = urllib.request.Request(url, headers={"authorization": f"Bearer {key}"} if key else {})
    with no_redirects.urlopen(req, timeout=5) as r:  # the key goes to this address only
        return orjson.loads(r.read())


def frame(base: str, key: str | None, expand: bool = True) -> Any:
    """One screen: totals, deployments, workers, routes and the newest requests (`expand`: the tables
    fill the terminal's width; off when printing to a file or pipe, whose width is unbounded)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from tierwise.commands.terminal_text import inert

    summary = _get(base + "/dashboard/api/summary?seconds=60", key)
    topo = _get(base + "/dashboard/api/topology", key)
    recent = _get(base + "/dashboard/api/recent", key)
    t = summary["totals"]
    now = time.time()
    last10 = [s for s in summary["series"] if s["t"] >= now - 10]
    rps = sum(s["n"] for s in last10) / 10
    learning = t.get("learning_cost", 0.0)  # shadow runs and judge calls: the saving is net of them
    head = Text(f"tierwise  {inert(base)}  requests {t['n']}  errors {t['errors']}  {rps:.1f} req/s  "
                f"cost ${t['cost']:.6f}  learning ${learning:.6f}  reference ${t['ref_cost']:.6f}  "
                f"saved ${t['ref_cost'] - t['cost'] - learning:.6f}",
                style="bold")
    dep = Table(title="deployments", expand=expand)
    for c in ("deployment", "provider", "model", "tier", "breaker", "calls/min", "errors", "latency ms"):
        dep.add_column(c)
    for d in topo["deployments"]:
        err = "-" if d["error_rate_1m"] is None else f"{100 * d['error_rate_1m']:.1f}%"
        lat = "-" if d["latency_ms_1m"] is None else f"{d['latency_ms_1m']:.1f}"
        style = {"open": "red", "half-open": "yellow"}.get(d["breaker"], "green")
        dep.add_row(inert(d["name"]), inert(d["provider"]), inert(d["model"]), d["locality"],
                    Text(d["breaker"], style=style), str(d["calls_1m"]), err, lat)
    per: dict[str, int] = {}
    dec: dict[str, dict[str, int]] = {}
    for s in last10:
        for k, v in s["routes"].items():
            per[k] = per.get(k, 0) + v
        for route, d in s.get("decisions", {}).items():
            into = dec.setdefault(route, {})
            for why, n in d.items():
                into[why] = into.get(why, 0) + n
    routes = Table(title="routes and decisions (last 10 s)", expand=expand)
    for c in ("route", "policy", "req/s", "decisions/s"):
        routes.add_column(c)
    for r in topo["routes"]:
        d = ", ".join(f"{k} {v / 10:.1f}" for k, v in dec.get(r["name"], {}).items()) or "-"
        routes.add_row(inert(r["name"]), inert(r["policy"] or "-"), f"{per.get(r['name'], 0) / 10:.1f}", inert(d))
    workers = Text("workers: " + (", ".join(inert(w["id"]) for w in topo["workers"]) or "none")
                   if topo["presence"] else "workers: no presence source configured")
    live = Table(title="newest requests", expand=expand)
    for c in ("request", "route", "answered by", "status", "ms", "cost $", "steps"):
        live.add_column(c)
    for r in list(reversed(recent["rows"]))[:15]:
        live.add_row(inert(r["id"]), inert(r["route"]), inert(r["model"] or "-"), str(r["status"]),
                     f"{r['latency_ms']:.1f}", f"{r['cost'] or 0:.6f}", inert(r["summary"]))
    return Group(head, dep, routes, workers, live)


@click.command("top")
@config_option
@click.option("--url", default=None, help="The gateway (default: server.host and server.port of the config).")
@click.option("--key", default=None, help=f"An admin or viewer key (default: ${KEY_ENV}, else the first set "
              "variable of server.admin_keys_env or observability.dashboard.viewer_keys_env).")
@click.option("--key-env", default=None, help="Environment variable holding the admin or viewer key (keeps the key "
              "off the command line).")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one screen and exit.")
def command(config_path: str, url: str | None, key: str | None, key_env: str | None, interval: float,
            once: bool) -> None:
    """Live view of a running gateway: deployments, routes, workers and the newest requests."""
    import urllib.error

    from rich.live import Live

    from tierwise import no_redirects
    from tierwise.commands._common import load_or_exit, redirect_refused
    from tierwise.commands.terminal_text import plain_console

    cfg = load_or_exit(config_path, allow_starter=True)
    if url is None:
        host = cfg.server.host if cfg.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
        url = f"http://{host}:{cfg.server.port}"
    base = url.rstrip("/")
    # the config's admin and viewer keys, as `tierwise budgets` finds its key: a key on the command line is seen
    # by every user of the machine (ps)
    names = [key_env] if key_env else [KEY_ENV, *cfg.server.admin_keys_env,
                                       *cfg.observability.dashboard.viewer_keys_env]
    key = key or next((os.environ[n] for n in names if os.environ.get(n)), None)
    which = " or ".join(f"${n}" for n in names)
    console = plain_console()  # names come from the config and clients: no markup

    def safe_frame() -> Any:
        try:
            return frame(base, key, expand=console.is_terminal)
        except urllib.error.HTTPError as e:
            if no_redirects.is_redirect(e.code):
                raise click.ClickException(redirect_refused(base, e.code)) from None
            if e.code == 404:
                raise click.ClickException(f"{base} has no dashboard: set observability.dashboard.enabled: true") \
                    from None
            if e.code == 401:
                raise click.ClickException(f"{base} wants an admin or viewer key, and none was sent or it was "
                                           f"refused: export {which}, or --key-env NAME") from None
            if e.code == 403:  # a gateway key reads its own requests only; `top` shows the whole gateway
                raise click.ClickException(f"{base} refused the key: `top` shows every client's requests, which "
                                           "needs an admin key (server.admin_keys_env) or a viewer key "
                                           "(observability.dashboard.viewer_keys_env)") from None
            raise click.ClickException(f"{base} answered HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise click.ClickException(f"cannot reach {base} ({getattr(e, 'reason', e)}): start the gateway "
                                       "(`tierwise serve`), or pass --url") from None

    if once:
        console.print(safe_frame())
        return
    try:
        with Live(safe_frame(), console=console, refresh_per_second=4, screen=sys.stdout.isatty()) as live:
            while True:
                time.sleep(interval)
                live.update(safe_frame())
    except KeyboardInterrupt:
        pass
