"""The `tierwise` command. Each subcommand lives in `tierwise.commands.<name>` (a `-` in the
command's name is a `_` in the module's) and exposes a click command or group named `command`;
they are discovered here, so adding a command never means editing this file. A command's
module is imported only when that command runs (or help lists it), so `tierwise serve` does not
load what `tierwise eval` needs (numpy and the routers): the gateway starts faster and smaller.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

import tierwise.commands as commands_pkg
from tierwise.commands._common import WholeSummaryGroup


def _module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands_pkg.__path__) if not m.name.startswith("_"))


class _LazyGroup(WholeSummaryGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name.replace("_", "-") for name in _module_names()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name not in _module_names():
            return None
        cmd = getattr(importlib.import_module(f"tierwise.commands.{module_name}"), "command", None)
        return cmd if isinstance(cmd, click.Command) else None

    def invoke(self, ctx: click.Context) -> object:
        # A config problem found after loading (building routes, ensembles, the ledger, the MCP server's
        # gateway) is one line and exit code 2 in every command, as a bad file is: never a traceback.
        try:
            return super().invoke(ctx)
        except Exception as e:
            # Imported only here: tierwise.errors brings the secret scrubber (~10% of what `tierwise mcp`
            # ran before answering its client's handshake).
            from tierwise.errors import ConfigError

            if not isinstance(e, ConfigError):
                raise
            from tierwise.commands._common import LOADED

            where = f"{LOADED[0]}: " if LOADED and not e.message.startswith(LOADED[0]) else ""
            click.echo(f"tierwise: config error: {where}{e.message}", err=True)
            ctx.exit(2)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierwise")
def main() -> None:
    """tierwise: cheap local models and frontier models as one system."""


if __name__ == "__main__":
    main()
