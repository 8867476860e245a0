"""Every `tierwise ...` command the README and docs/ show runs as written: its subcommand exists and click
accepts its options and arguments (a renamed command or option, or a typo in the docs, fails here with the
page and line; `tierwise savings` was shown for a command called `report`)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from tierwise.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"(?:^|[\s;&(|$])(?:\S*/)?tierwise ([a-z][\w-]*(?: [^;&|)#`]*)?)")
# What the docs write for a value the reader supplies.
PLACEHOLDER = re.compile(r"<[^>]*>|\.\.\.|…")
OPTIONAL = re.compile(r"[\[\]]")  # `[--json]`: an optional part, shown in brackets


def _commands() -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        spans: list[tuple[int, str]] = []
        for block in FENCE.finditer(text):  # shell lines of fenced blocks
            at = text[: block.start(1)].count("\n") + 1
            spans += [(at + i, ln) for i, ln in enumerate(block.group(1).splitlines()) if "tierwise " in ln]
        prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for m in re.finditer(r"`([^`\n]+)`", prose):  # inline code that starts with the command
            if re.match(r"(?:\S*/)?tierwise [a-z]", m.group(1)):
                spans.append((prose[: m.start()].count("\n") + 1, m.group(1)))
        for line, span in spans:
            for m in COMMAND.finditer(span.split(" # ")[0]):
                out.setdefault(m.group(1).strip(), f"{page.relative_to(REPO)}:{line}")
    return sorted((where, cmd) for cmd, where in out.items())


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 60  # the finder still finds them


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w} {c}"[:90] for w, c in COMMANDS])
def test_doc_command_runs_as_written(where, command):
    try:
        args = shlex.split(OPTIONAL.sub(" ", PLACEHOLDER.sub("X", command)))
    except ValueError:
        pytest.fail(f"{where}: `tierwise {command}` is not a shell command line")
    group: click.Command = cli
    ctx = click.Context(cli, info_name="tierwise")
    while isinstance(group, click.Group) and args:
        sub = group.get_command(ctx, args[0])
        if sub is None:
            if not isinstance(group, type(cli)) or group is not cli or args[0] in {"--help", "-h", "--version"}:
                return
            pytest.fail(f"{where}: `tierwise {command}`: there is no command `{args[0]}` "
                        f"(commands: {', '.join(c for c in group.list_commands(ctx) if group.get_command(ctx, c))})")
        ctx = click.Context(sub, info_name=args[0], parent=ctx)
        group, args = sub, args[1:]
    if isinstance(group, click.Group) or group.name == "claude":  # `claude` passes what follows to Claude Code
        return
    try:
        group.make_context(group.name, list(args), parent=ctx.parent, resilient_parsing=False)
    except click.exceptions.Exit:
        pass  # --help
    except click.NoSuchOption as e:
        pytest.fail(f"{where}: `tierwise {command}`: {e.format_message()}")
    except click.BadParameter as e:  # a value the docs spell out (`--by arm`) must be one the option takes
        choice = e.param is not None and isinstance(e.param.type, click.Choice)
        if choice and not re.search(r"'(X|[A-Z_]+)' is not one of", e.format_message()):
            pytest.fail(f"{where}: `tierwise {command}`: {e.format_message()}")
    except click.UsageError:
        pass  # arguments left out (`tierwise feedback` in prose) or written as placeholders (`--workers N`)
