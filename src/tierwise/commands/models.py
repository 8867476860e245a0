"""`tierwise models`: list the routes and models a config serves, and what each route leads to."""

from __future__ import annotations

import click

from tierwise.commands._common import config_option, load_or_exit


@click.command("models")
@config_option
def command(config_path: str) -> None:
    """List the models and routes clients can ask for, and what each route leads to."""
    from rich.console import Console
    from rich.table import Table

    from tierwise.commands.terminal_text import wide
    from tierwise.route_map import leads_to, models_of

    cfg = load_or_exit(config_path, allow_starter=True)
    t = Table(title="models")
    # Names are what clients type: never truncate them, however narrow the terminal.
    t.add_column("name", no_wrap=True, overflow="fold")
    t.add_column("provider")
    t.add_column("upstream id", overflow="fold")
    for col in ("locality", "context", "vision", "tools"):
        t.add_column(col)
    for n, m in cfg.models.items():
        p = cfg.providers[m.provider]
        vision = "-" if m.vision is None else str(m.vision)  # unset: not known
        t.add_row(n, m.provider, m.model, p.locality, str(m.context_window or "-"), vision, str(m.tools))
    r = Table(title="routes")
    r.add_column("name", no_wrap=True, overflow="fold")
    r.add_column("policy")
    r.add_column("leads to", overflow="fold")
    r.add_column("models reached", overflow="fold")
    default = cfg.server.default_route
    for n, pc in cfg.routes.items():
        direct = leads_to(cfg, n)
        reached = models_of(cfg, n)
        r.add_row(n + (" (default)" if n == default else ""), pc.policy, ", ".join(direct) or "-",
                  "(the same)" if reached == direct else ", ".join(reached))  # an empty cell read as "none"
    c = wide(Console())
    c.print(t)
    c.print(r)
