"""`tierwise serve`: run the gateway."""

from __future__ import annotations

import logging
import sys

import click

from tierwise.commands._common import config_option, load_or_exit

STARTUP_FAILURE = 3  # uvicorn's own exit status when a server cannot start


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Override server.host.")
@click.option("--port", type=int, default=None, help="Override server.port.")
@click.option("--log-level", default="warning", show_default=True)
def command(config_path: str, host: str | None, port: int | None, log_level: str) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway."""
    import uvicorn

    from tierwise.server.build import build_from_config, tune_gc_for_serving, uvicorn_config
    from tierwise.server.limits import raise_open_file_limit

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_or_exit(config_path, allow_starter=True)
    raise_open_file_limit()  # before the connection cap is derived from it
    app = build_from_config(cfg)
    h = host or cfg.server.host
    p = port if port is not None else cfg.server.port
    click.echo(f"tierwise: serving on http://{h}:{p} (OpenAI: /v1/chat/completions, Anthropic: /v1/messages)",
               err=True)
    server = uvicorn.Server(uvicorn_config(app, h, p, log_level=log_level))
    tune_gc_for_serving()
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C is how a foreground gateway is meant to stop
        pass
    if not server.started:  # e.g. the port is taken: exit non-zero, so a supervisor sees the failure
        sys.exit(STARTUP_FAILURE)
