"""`tierwise mcp`: the MCP server over stdio (for Claude Code) or streamable HTTP."""

from __future__ import annotations

import click

from tierwise.commands._common import config_option, load_or_exit


@click.command("mcp")
@config_option
@click.option("--project", "project_dir", default=".", show_default=True,
              help="Folder holding .tierwise/ensembles and .tierwise/profiles.")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="For --transport http.")
@click.option("--port", type=int, default=4100, show_default=True, help="For --transport http.")
def command(config_path: str, project_dir: str, transport: str, host: str, port: int) -> None:
    """Serve ensembles, routing advice and savings as MCP tools.

    Claude Code: `claude mcp add tierwise -- tierwise mcp`."""
    import anyio

    from tierwise.ensembles.library import Library
    from tierwise.ensembles.service import EnsembleService
    from tierwise.mcp_server import build_mcp_server
    from tierwise.server.build import build_gateway

    cfg = load_or_exit(config_path, allow_starter=True)
    service = EnsembleService(build_gateway(cfg), Library(project_dir))
    server = build_mcp_server(service)

    async def serve() -> None:
        try:
            if transport == "stdio":
                await server.run_stdio_async()
            else:
                click.echo(f"tierwise: MCP over streamable HTTP at http://{host}:{port}/mcp", err=True)
                await server.run_streamable_http_async(host=host, port=port)
        finally:
            await service.gateway.close()

    anyio.run(serve)
