"""`tierwise init`: write a starter tierwise.yaml from what this machine has."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.option("--path", default="tierwise.yaml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def command(path: str, force: bool) -> None:
    """Write a starter config (detects a local Ollama/llama.cpp/LM Studio and API keys)."""
    from tierwise.starter import detect, starter_yaml

    p = Path(path)
    if p.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    found = detect()
    p.write_text(starter_yaml(found), encoding="utf-8")
    local = found["local"]
    click.echo(f"wrote {path}")
    if local:
        click.echo("  local model server found: " + ", ".join(f"{n} on port {port}" for n, port, _, _ in local))  # type: ignore[union-attr,attr-defined]
    else:
        click.echo("  no local model server found on 11434/8080/1234: the config points at Ollama (ollama serve)")
    for env, seen in (("ANTHROPIC_API_KEY", found["anthropic_key"]), ("OPENAI_API_KEY", found["openai_key"])):
        click.echo(f"  {env}: {'set' if seen else 'not set'}")
    if found["openai_key"] and not found["anthropic_key"]:
        click.echo("  frontier tier: OpenAI (gpt-4o, gpt-4o-mini), since only OPENAI_API_KEY is set")
    click.echo("next: `tierwise doctor` to check it, `tierwise serve` to run it")
