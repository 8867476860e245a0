"""`tierwise claude`: run the Claude Code CLI against the gateway (like `ccr code`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import click

from tierwise.commands._common import config_option, load_or_exit


def claude_env(base_url: str, *, haiku_model: str | None, subagent_model: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["ANTHROPIC_BASE_URL"] = base_url
    # Claude Code insists on some key; the gateway holds the real upstream keys.
    env.setdefault("ANTHROPIC_API_KEY", os.environ.get("TIERWISE_API_KEY", "tierwise"))
    if haiku_model:
        env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] = haiku_model
    if subagent_model:
        env["CLAUDE_CODE_SUBAGENT_MODEL"] = subagent_model
    env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    return env


@click.command("claude", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@config_option
@click.option("--url", default=None, help="Gateway URL (default: from the config's server section).")
@click.option("--haiku-model", default=None, help="Model/route for Claude Code's background (haiku) work.")
@click.option("--subagent-model", default=None, help="Model/route for Claude Code subagents.")
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
def command(config_path: str, url: str | None, haiku_model: str | None, subagent_model: str | None,
            claude_args: tuple[str, ...]) -> None:
    """Launch `claude` with ANTHROPIC_BASE_URL pointing at the gateway; extra arguments go to claude."""
    if url is None:
        cfg = load_or_exit(config_path, allow_starter=True)
        host = "127.0.0.1" if cfg.server.host in ("0.0.0.0", "::") else cfg.server.host
        url = f"http://{host}:{cfg.server.port}"
    exe = shutil.which("claude") or shutil.which("claude", path=os.path.join(os.getcwd(), ".tools", "claude-code", "node_modules", ".bin"))
    if exe is None:
        raise click.ClickException("the `claude` CLI is not installed: npm install -g @anthropic-ai/claude-code")
    env = claude_env(url, haiku_model=haiku_model, subagent_model=subagent_model)
    sys.exit(subprocess.call([exe, *claude_args], env=env))
