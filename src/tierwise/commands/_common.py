"""Shared CLI plumbing: finding and loading the config with errors a person can act on."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from tierwise.config import Config
    from tierwise.ledger.store import Ledger

DEFAULT_CONFIG = "tierwise.yaml"
CONFIG_ENV = "TIERWISE_CONFIG"
# What a command does when the path it was given names nothing.
EXPLICIT_CONFIG_MISSING = 2
# `--port`: a TCP port (0: the OS picks one). A plain int let 99999 through, which the socket layer took modulo
# 65536: `serve --port 99999` served on 34463.
PORT = click.IntRange(0, 65535)
# `--log-level`: the levels Python's logging knows (any other name was a ValueError traceback at start).
LOG_LEVEL = click.Choice(["critical", "error", "warning", "info", "debug"], case_sensitive=False)


SUMMARY_LIMIT = 400  # a summary is a command's first sentence; this only stops a runaway docstring


class WholeSummaryGroup(click.Group):
    """A command group whose help lists each subcommand's whole first sentence, wrapped, never cut with
    "..." to fit one line (click's default, which left `cache invalidate` reading "(both:...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=SUMMARY_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _default_config() -> str:
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG


def _remember_source(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # A path someone typed (`-c`, $TIERWISE_CONFIG) must exist; only the default may fall back
    # to the starter config.
    explicit = ctx.get_parameter_source(param.name or "") is not click.core.ParameterSource.DEFAULT
    ctx.meta["tierwise.config_explicit"] = explicit or bool(os.environ.get(CONFIG_ENV))
    return value


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    default=_default_config,
    show_default="tierwise.yaml or $TIERWISE_CONFIG",
    help="Path to tierwise.yaml.",
    callback=_remember_source,
)


def config_explicit() -> bool:
    """Whether the running command's config path was given (`-c` or $TIERWISE_CONFIG)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get("tierwise.config_explicit"))


def load_or_exit(path: str, *, allow_starter: bool = False, sections: tuple[str, ...] | None = None) -> Config:
    """The config at `path`, or exit with its error; `sections`: only those read (config.parse_config)."""
    from tierwise.config import load_config, parse_config
    from tierwise.errors import ConfigError

    if not Path(path).exists():
        if config_explicit() or not allow_starter:
            if not config_explicit():  # nobody named a file: this command needs one, and there is none here
                click.echo(f"tierwise: no {path} in {os.getcwd()}: this command needs one; "
                           "`tierwise init` writes one here, or pass --config PATH", err=True)
                sys.exit(EXPLICIT_CONFIG_MISSING)
            how = f"${CONFIG_ENV}" if os.environ.get(CONFIG_ENV) == path else "--config"
            click.echo(f"tierwise: config file {path} (from {how}) does not exist; fix the path, or "
                       f"`tierwise init --path {path}` writes one there", err=True)
            sys.exit(EXPLICIT_CONFIG_MISSING)
        from tierwise.starter import starter_yaml

        click.echo(f"tierwise: no {path} found; using the built-in starter config (run `tierwise init` to write one)",
                   err=True)
        return parse_config(starter_yaml(), file="<starter config>")
    try:
        cfg = load_config(path, sections=sections)
    except ConfigError as e:
        click.echo(f"tierwise: config error: {e.message}", err=True)
        sys.exit(2)
    from tierwise.secret_scrub import register_config

    register_config(cfg)  # what a command prints (ledger rows written before a leak was closed) is scrubbed of them
    LOADED[:] = [path]
    return cfg


# The config file this process loaded: a config error found later (building routes, opening the ledger)
# names it (tierwise/cli.py).
LOADED: list[str] = []


def open_ledger(cfg: Config) -> Ledger:
    from tierwise.ledger.store import Ledger

    if not cfg.ledger.enabled:
        raise click.ClickException("the ledger is disabled in this config (ledger.enabled: false)")
    from tierwise.errors import ConfigError

    try:  # With the journal config: journals of a crashed gateway are replayed before reading.
        return Ledger.open(cfg.ledger.resolved_path(cfg.base_dir), cfg.ledger.journal,
                           max_queued=cfg.ledger.max_queued,
                           max_queued_chars=cfg.ledger.max_queued_chars)
    except ConfigError as e:  # not a ledger, or not openable: say which and where, no traceback
        click.echo(f"tierwise: config error: {cfg.source or 'tierwise.yaml'}: {e.message}", err=True)
        sys.exit(2)


def open_existing_ledger(cfg: Config) -> Ledger:
    """The ledger, for reading: where there is none yet, say so (and create nothing)."""
    if cfg.ledger.enabled:
        path = cfg.ledger.resolved_path(cfg.base_dir)
        if not Path(path).exists():
            # a gateway run with `-c examples/x.yaml` wrote its ledger beside that file, not here
            where = ("; a gateway started with `-c FILE` keeps its ledger in FILE's folder (a relative `ledger.path` "
                     "is read from there): give this command the same `-c FILE`") if cfg.source == "<starter config>" else ""
            click.echo(f"tierwise: there is no ledger at {path} yet: the gateway writes one as it serves "
                       f"requests (`tierwise serve`){where}", err=True)
            sys.exit(1)
    return open_ledger(cfg)


def _which_key(key: str | None, key_env: str | None, key_option: str) -> str:
    """What key a command sent, in words that say how to send the right one (never the key)."""
    if key_env is None:
        return f"this command sent no key: name the variable that holds one with {key_option} NAME"
    if key is None:
        return (f"this command sent no key: {key_env} is not set in this shell (export it, or name another "
                f"variable with {key_option} NAME)")
    return f"the key in {key_env} was refused (an admin key sees every client's; {key_option} NAME picks another)"


def gateway_url_and_key(cfg: Config, url: str | None, key_env: str | None) -> tuple[str, str | None, str | None]:
    """Where the config's running gateway listens, the key to call it with (the first of server.api_keys_env
    unless `key_env` names another), and the variable it was read from."""
    from tierwise.config import ClientKey

    if key_env is None and cfg.server.api_keys_env:
        first = cfg.server.api_keys_env[0]
        key_env = first.env if isinstance(first, ClientKey) else first
    host = cfg.server.host if cfg.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return url or f"http://{host}:{cfg.server.port}", os.environ.get(key_env) if key_env else None, key_env


def redirect_refused(url: str, code: int) -> str:
    """Why a command stopped at a redirect (its key is not sent on to the address a 3xx names)."""
    return (f"{shown_url(url)} answered HTTP {code}, a redirect, which tierwise does not follow with a key "
            "(it would go to the address the answer names): pass --url the gateway's own address")


def redis_failure(what: str, url: str, e: BaseException, setting: str) -> click.ClickException:
    """A command that read Redis and failed: one line naming the server (host:port, never the user or password),
    the error's type and redis-py's text, scrubbed (session 25: `budgets` printed that text as it came, `cache`
    printed a traceback)."""
    from tierwise.commands.terminal_text import inert
    from tierwise.dispatch.connection import where

    detail = inert(str(e))  # scrubbed, controls escaped
    return click.ClickException(f"cannot {what} from Redis at {where(url)} ({type(e).__name__}"
                                + (f": {detail}" if detail else "") + f"); check {setting}")


def shown_url(url: str) -> str:
    """`url` fit for the terminal: secrets (a password or key in it) removed, controls shown as escapes."""
    from tierwise.commands.terminal_text import inert

    return inert(url)


def gateway_json(url: str, path: str, key: str | None, *, method: str = "GET", body: Any = None,
                 hint: str = "start it, or pass --url", key_env: str | None = None,
                 key_option: str = "--key-env") -> dict[str, Any]:
    """Call a running gateway's admin endpoint; its JSON answer, or a ClickException saying what went wrong
    (for a refused key: which variable the key was read from, or that none was set)."""
    import json
    import urllib.error
    import urllib.request

    from tierwise import no_redirects

    headers = {"authorization": f"Bearer {key}"} if key else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers, method=method)
    try:
        with no_redirects.urlopen(req, timeout=15) as r:  # the key goes to this address only
            out: dict[str, Any] = json.loads(r.read(16 << 20))
            return out
    except urllib.error.HTTPError as e:
        if no_redirects.is_redirect(e.code):
            raise click.ClickException(redirect_refused(url, e.code)) from None
        try:
            msg = json.loads(e.read(64 << 10))["error"]["message"]
        except Exception:
            msg = f"HTTP {e.code}"
        if e.code in (401, 403):
            msg += "; " + _which_key(key, key_env, key_option)
        raise click.ClickException(f"the gateway answered {e.code}: {shown_url(msg)}") from None
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot reach the gateway at {shown_url(url)} ({type(e).__name__}); {hint}") from None
