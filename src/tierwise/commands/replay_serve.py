"""`tierwise replay-serve`: serve a dataset's recorded answers as an OpenAI-compatible model
(see tierwise.evaluation.replay_server), to run gateway policies end to end on real outputs."""

from __future__ import annotations

import sys

import click

from tierwise.commands._common import PORT


@click.command("replay-serve")
@click.argument("data")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=PORT, default=8090, show_default=True, help="Port to listen on (0: any free one).")
def command(data: str, host: str, port: int) -> None:
    """Serve DATA (mmlu, mmlu-no-hsm, gsm8k, mt-bench, a JSONL file, or several joined by commas) as
    models `strong` and `weak` at /v1; send its prompts verbatim (docs/routers.md)."""
    from aiohttp import web

    from tierwise.commands.serve import bind_or_exit
    from tierwise.evaluation.loaders import DataError, load_dataset
    from tierwise.evaluation.replay_server import replay_app

    try:
        ds = load_dataset(data)
    except (DataError, ValueError) as e:
        click.echo(f"tierwise replay-serve: {e}", err=True)
        sys.exit(2)
    sock = bind_or_exit(host, port)  # a taken port is one line, not a traceback; port 0: the one it got is shown
    port = sock.getsockname()[1]
    click.echo(f"replaying {ds.name} ({len(ds)} queries) at http://{host}:{port}/v1 — models: strong, weak; "
               f"quality so far at /replay/stats", err=True)
    web.run_app(replay_app(ds), sock=sock, print=None)
