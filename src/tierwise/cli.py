"""The `tierwise` command. Each subcommand lives in `tierwise.commands.<name>` and exposes a
click command or group named `command`; they are discovered here, so adding a command never
means editing this file."""

from __future__ import annotations

import importlib
import pkgutil

import click

import tierwise.commands as commands_pkg


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierwise")
def main() -> None:
    """tierwise: cheap local models and frontier models as one system."""


def _register() -> None:
    for mod in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tierwise.commands.{mod.name}")
        cmd = getattr(module, "command", None)
        if isinstance(cmd, click.Command):
            main.add_command(cmd)


_register()

if __name__ == "__main__":
    main()
