"""`tierwise mcp`: the MCP server over stdio (for Claude Code) or streamable HTTP (token required)."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import click

# The same option as commands/_common.config_option, defined here so that starting the MCP server
# does not import the config machinery (~0.25 s) before it answers the client's handshake.
config_option = click.option(
    "--config", "-c", "config_path",
    default=lambda: os.environ.get("TIERWISE_CONFIG", "tierwise.yaml"),
    show_default="tierwise.yaml or $TIERWISE_CONFIG",
    help="Path to tierwise.yaml.",
)


def load_or_exit(path: str, *, allow_starter: bool = False) -> Any:
    from tierwise.commands._common import load_or_exit as load

    return load(path, allow_starter=allow_starter)


@click.command("mcp")
@config_option
@click.option("--project", "project_dir", default=".", show_default=True,
              help="Folder holding .tierwise/ensembles and .tierwise/profiles.")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio: for a client that starts this command; http: serve MCP on --host/--port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="For --transport http.")
@click.option("--port", type=click.IntRange(0, 65535), default=4100, show_default=True, help="For --transport http.")
@click.option("--allow-remote", is_flag=True,
              help="Allow --host to be a non-loopback address (the bearer token is still required; "
                   "put TLS in front: the token travels in every request).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME[:PORT]",
              help="Also accept this Host header (and Origin), e.g. the name clients reach a remote bind by.")
def command(config_path: str, project_dir: str, transport: str, host: str, port: int, allow_remote: bool,
            allowed_hosts: tuple[str, ...]) -> None:
    """Serve ensembles, routing advice and savings as MCP tools.

    Claude Code: `claude mcp add tierwise -- tierwise mcp`. Over HTTP every request needs
    `Authorization: Bearer <token>`: the token is $TIERWISE_MCP_TOKEN, or one generated on the
    first start (printed once) and kept in $TIERWISE_HOME/mcp-token (~/.config/tierwise)."""
    source = click.get_current_context().get_parameter_source("config_path")
    from_env = source is click.core.ParameterSource.DEFAULT and bool(os.environ.get("TIERWISE_CONFIG"))
    if (source is not click.core.ParameterSource.DEFAULT or from_env) and not os.path.exists(config_path):
        # Only the default path may fall back to the starter config: a typo in `-c` (or in an MCP
        # client's server entry) must not serve a config nobody wrote.
        how = "$TIERWISE_CONFIG" if from_env else "--config"
        click.echo(f"tierwise: config file {config_path} (from {how}) does not exist; fix the path, or "
                   f"`tierwise init --path {config_path}` writes one there", err=True)
        sys.exit(2)
    token = ""
    if transport == "http":
        from tierwise import mcp_http

        if not mcp_http.is_loopback(host) and not allow_remote:
            click.echo(f"tierwise: --host {host} is not a loopback address; pass --allow-remote to serve "
                       "the MCP tools beyond this machine", err=True)
            sys.exit(2)
        # The config first: a bad one stops here, before a token is made or a URL announced.
        cfg = load_or_exit(config_path, allow_starter=True)
        service = _service(cfg, project_dir)
        from tierwise.errors import ConfigError

        try:
            token, token_file, fresh = mcp_http.load_token()
        except ConfigError as e:
            click.echo(f"tierwise: {e.message}", err=True)
            sys.exit(2)
        from tierwise.commands.serve import bind_or_exit

        sock = bind_or_exit(host, port)  # before the URL is announced: a taken port is one line, port 0 is shown
        port = sock.getsockname()[1]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/mcp"
        click.echo(f"tierwise: MCP over streamable HTTP at {url} (bearer token required)", err=True)
        if fresh and sys.stderr.isatty():
            click.echo(f"tierwise: generated an MCP token, kept in {token_file} (mode 0600); shown this once. "
                       "Connect with:\n" + mcp_http.connect_hint(url, token), err=True)
        elif fresh:  # stderr is a pipe or a file: under a service manager, a log (session 29: the token went there)
            click.echo(f"tierwise: generated an MCP token, kept in {token_file} (mode 0600); not printed (stderr "
                       "is not a terminal). Connect with:\n"
                       + mcp_http.connect_hint(url, f"$(cat {shlex.quote(str(token_file))})"), err=True)
        else:
            click.echo("tierwise: the token is " + (f"in {token_file}" if token_file else f"${mcp_http.TOKEN_ENV}")
                       + "; clients send `Authorization: Bearer <token>`", err=True)

    if transport == "stdio":  # the handshake is answered while the SDK and the gateway load
        from tierwise.mcp_fast import serve_stdio

        made: list[Any] = []

        def build() -> Any:
            cfg = load_or_exit(config_path, allow_starter=True)
            made.append(_service(cfg, project_dir))
            return _server(made[0])

        async def close() -> None:
            if made:
                await made[0].gateway.close()

        serve_stdio(build, close=close)
        return

    server = _server(service)

    async def serve() -> None:
        try:
            import uvicorn

            from tierwise.mcp_http import build_app
            from tierwise.server.build import KEEP_ALIVE_S
            from tierwise.server.limits import guarded_protocol

            app = build_app(server, host=host, token=token, allowed_hosts=list(allowed_hosts),
                            max_body=cfg.server.max_body_bytes, limits=cfg.server.limits)
            # The gateway's connection bounds (header size and deadlines, connection cap): a
            # client without the token reaches the HTTP parser before the token is checked.
            # proxy_headers off: uvicorn's default trusts X-Forwarded-For from 127.0.0.1, so any local client named
            # itself any client for the per-client caps (review31e); `server.limits.trusted_proxies` decides.
            http = guarded_protocol(cfg.server.limits, KEEP_ALIVE_S)
            await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", http=http,
                                                timeout_keep_alive=KEEP_ALIVE_S, proxy_headers=False)
                                 ).serve(sockets=[sock])
        finally:
            await service.gateway.close()

    import anyio  # here, not at the top: stdio answers its client before anything it does not need loads

    anyio.run(serve)


def _service(cfg: Any, project_dir: str) -> Any:
    from tierwise.ensembles.library import Library
    from tierwise.ensembles.service import EnsembleService
    from tierwise.server.build import build_gateway

    if cfg.budgets is not None and (split := cfg.budgets.per_process_ensemble_warning()) is not None:
        click.echo(f"tierwise: warning: {split}", err=True)  # (stderr: stdout is the stdio transport's)
    return EnsembleService(build_gateway(cfg), Library(project_dir, trusted=cfg.ensembles.trusted_paths(cfg.base_dir),
                                                       script_env=cfg.ensembles.script_env))


def _server(service: Any) -> Any:
    from tierwise.mcp_server import build_mcp_server

    return build_mcp_server(service)
