"""`tierwise init`: write a starter tierwise.yaml from what this machine has."""

from __future__ import annotations

import re
from pathlib import Path

import click


@click.command("init")
@click.option("--path", default="tierwise.yaml", show_default=True,
              help="Where to write the config (a folder not there yet is made).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--local", "local_url", default=None, metavar="URL",
              help="Your local model server's OpenAI-compatible base URL (vLLM, or any server on another port), "
                   "e.g. http://127.0.0.1:8000/v1; its first model is configured. Default: look on 11434 (Ollama), "
                   "8080 (llama.cpp) and 1234 (LM Studio).")
def command(path: str, force: bool, local_url: str | None) -> None:
    """Write a starter config (detects a local Ollama/llama.cpp/LM Studio and API keys)."""
    from tierwise.clients import claude_code, codex
    from tierwise.console_log import shown_url
    from tierwise.endpoint_url import endpoint
    from tierwise.starter import detect, served_models, starter_yaml

    p = Path(path)
    if p.is_dir():
        raise click.ClickException(f"{path} is a folder: name the file to write, e.g. --path {p / 'tierwise.yaml'}")
    if p.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    if local_url is not None and not local_url.startswith(("http://", "https://")):
        raise click.BadParameter("an http(s) URL such as http://127.0.0.1:8000/v1", param_hint="--local")
    if local_url is not None:  # an endpoint pasted from the server's docs: every call would go to .../models/chat/...
        head, q, query = local_url.partition("?")  # (a query, `?key=...`, stays: endpoints go before it)
        head = re.sub(r"/(chat/completions|completions|responses|messages|models|embeddings)$", "",
                      head.rstrip("/")).rstrip("/")
        if head != local_url.partition("?")[0].rstrip("/"):
            click.echo(f"  --local: using {shown_url(head)}, the base URL (the gateway adds /chat/completions itself)")
        local_url = head + q + query
    found = detect(local_url)
    local = found["local"]
    if local_url is not None and served_models(local_url) is None:  # (printed without its userinfo and query)
        click.echo(f"  warning: {endpoint(shown_url(local_url), '/models')} did not answer: is the server running, "
                   "and is /v1 in the URL? (`tierwise doctor` checks it again)")
    try:  # `--path configs/tierwise.yaml` makes configs/ (the hint other commands print when a -c path is missing)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(starter_yaml(found), encoding="utf-8")
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror}") from None
    click.echo(f"wrote {path}")
    if local:
        click.echo("  local model server: " + ", ".join(  # type: ignore[union-attr]
            f"{n} on port {port}, model {m}" for n, port, _, m in local)  # type: ignore[attr-defined]
            + (f", {found['local_window']:,} tokens per request" if found.get("local_window") else ""))
        window = found.get("local_window")
        trained = found.get("local_trained")
        if isinstance(window, int) and window < claude_code.MIN_WINDOW:
            fix = ("Restart the server with more context per request (llama-server: -c 32768 -np 1, or -c 32768 x "
                   "its slots), then `tierwise init --force`")
            if isinstance(trained, int) and trained <= window:  # -c 32768 would change nothing: llama caps it here
                fix = (f"Its model was trained for {trained:,} tokens, and llama-server holds no more per request "
                       "whatever -c asks: serve a model trained for 32,768 or more, then `tierwise init --force`")
            click.echo(f"  warning: {window:,} tokens per request is less than a Claude Code subagent turn "
                       f"(~{claude_code.TOKENS['subagent']:,} tokens) or a Codex one (~{codex.SUBAGENT_TOKENS:,}): "
                       "the rules written below send those here, and each "
                       f"will go to the frontier instead. {fix}")
    else:
        click.echo("  no local model server found on 11434/8080/1234: the config points at Ollama (ollama serve); "
                   "for vLLM or a server on another port: `tierwise init --force --local http://HOST:PORT/v1`")
    for env, seen in (("ANTHROPIC_API_KEY", found["anthropic_key"]), ("OPENAI_API_KEY", found["openai_key"])):
        click.echo(f"  {env}: {'set' if seen else 'not set'}")
    if found["openai_key"] and not found["anthropic_key"]:
        click.echo("  frontier tier: OpenAI (gpt-4o, gpt-4o-mini), since only OPENAI_API_KEY is set")
    names = _client_names(p)
    if names:
        click.echo("  " + names)
    c = "" if path == "tierwise.yaml" else f" -c {path}"
    click.echo(f"next: `tierwise doctor{c}` to check it, `tierwise serve{c}` to run it")


def _client_names(path: Path) -> str | None:
    """What clients may put in `model`, and where any other name goes: code written for the upstream
    (`model="gpt-4o-mini"`) lands on the default route, whose rules may pick a dearer model."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(raw, dict):
        return None
    routes, models = list(raw.get("routes") or {}), raw.get("models") or {}
    default = (raw.get("server") or {}).get("default_route")
    ids = [str(m["model"]) for m in models.values() if isinstance(m, dict) and m.get("model") not in models]
    other = f"any other name (an upstream id such as {ids[-1]!r} included) goes to route {default}" if default \
        and ids else ""
    return (f"clients ask for: routes {', '.join(routes)}; models {', '.join(models)}"
            + (f"; {other}" if other else ""))
