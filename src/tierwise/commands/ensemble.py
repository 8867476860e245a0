"""`tierwise ensemble list | validate | run | create | promote | artifacts`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from tierwise.commands._common import WholeSummaryGroup, config_option, load_or_exit
from tierwise.errors import ConfigError, TierwiseError  # light: no pydantic, no aiohttp

project_option = click.option("--project", "project_dir", default=".", show_default=True,
                              help="Folder holding .tierwise/ensembles and .tierwise/profiles.")


def _library(project_dir: str, cfg: Any = None) -> Any:
    """The ensemble folders; with a config, the files it trusts (`ensembles.trusted`) are trusted."""
    from tierwise.ensembles.library import Library

    if cfg is None:
        return Library(project_dir)
    return Library(project_dir, trusted=cfg.ensembles.trusted_paths(cfg.base_dir), script_env=cfg.ensembles.script_env)


def _service(config_path: str, project_dir: str) -> Any:
    from tierwise.ensembles.service import EnsembleService
    from tierwise.server.build import build_gateway

    cfg = load_or_exit(config_path, allow_starter=True)
    return EnsembleService(build_gateway(cfg), _library(project_dir, cfg))


def _fail(e: TierwiseError) -> None:
    click.echo(f"tierwise: {e.message}", err=True)
    sys.exit(2)


def _json(v: Any) -> None:
    # (a run's agents' errors are the last line of an untrusted script's stderr: terminal escapes, written inert)
    click.echo(_json_text(orjson.dumps(v, default=str, option=orjson.OPT_INDENT_2).decode()))


def _json_text(text: str) -> str:
    from tierwise.commands.terminal_text import inert_json

    return inert_json(text)


def _lines(text: str) -> str:
    """`text` for a terminal: each line inert (tierwise.commands.terminal_text), the line breaks kept."""
    from tierwise.commands.terminal_text import inert

    return "\n".join(inert(line) for line in text.split("\n"))


def skeleton(name: str, model: str) -> str:
    """A starting point: extract facts in parallel, then synthesise."""
    return f"""name: {name}
description: extract facts, then synthesise an answer
profiles:
  worker:
    model: {model}
    system_prompt: You are precise and brief.
    temperature: 0
    max_tokens: 512
agents:
  - name: extract
    profile: worker
    prompt: "List the key facts in this text as a JSON array of strings:\\n{{input}}"
    output: json
  - name: synthesise
    profile: worker
    depends_on: [extract]
    prompt: "Write a short summary from these facts:"
"""


@click.group("ensemble", cls=WholeSummaryGroup)
def command() -> None:
    """Ensembles of small models: YAML DAGs of LLM, script and nested-ensemble agents."""


@command.command("list")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(project_dir: str, as_json: bool) -> None:
    """Ensembles in the project, the global folder and the shared library."""
    entries = [e.to_dict() for e in _library(project_dir).entries()]
    if as_json:
        _json(entries)
        return
    if not entries:
        click.echo("no ensembles yet (`tierwise ensemble create NAME`)")
    for e in entries:
        mark = "" if e["valid"] else "  [invalid]"
        click.echo(f"{e['name']:<28} {e['level']:<8} {e['description']}{mark}")


@command.command("validate")
@click.argument("ensemble")
@config_option
@project_option
def validate(ensemble: str, config_path: str, project_dir: str) -> None:
    """Check an ensemble file and that its profiles, models, scripts and nested ensembles resolve."""
    from tierwise.config import load_config

    known = None
    cfg = None
    if Path(config_path).exists():
        try:
            cfg = load_config(config_path)
            known = lambda m: m in cfg.models or m in cfg.routes  # noqa: E731
        except ConfigError as e:
            _fail(e)
    lib = _library(project_dir, cfg)
    try:
        ens = lib.load(ensemble)
    except ConfigError as e:
        _fail(e)
        return
    problems = lib.problems(ens, known)
    if problems:
        click.echo(f"tierwise: {ens.path}: invalid ensemble:\n  " + "\n  ".join(problems), err=True)
        sys.exit(2)
    click.echo(f"{ens.name}: valid ({len(ens.agents)} agents" + ("" if known else "; models not checked: no config")
               + ")")


@command.command("run")
@click.argument("ensemble")
@click.option("--input", "input_text", default=None, help="Input text; default: stdin.")
@click.option("--input-json", is_flag=True, help="Parse the input as JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole run as JSON.")
@config_option
@project_option
def run(ensemble: str, input_text: str | None, input_json: bool, as_json: bool, config_path: str,
        project_dir: str) -> None:
    """Run an ensemble; writes artifacts under .tierwise/artifacts and a ledger row."""
    text = input_text if input_text is not None else sys.stdin.read()
    value: Any = text
    if input_json:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise click.BadParameter(f"not JSON: {e}", param_hint="--input") from None
    svc = _service(config_path, project_dir)

    async def go() -> Any:
        try:
            return await svc.run(ensemble, value)
        finally:
            await svc.gateway.close()

    try:
        result = asyncio.run(go())
    except TierwiseError as e:
        _fail(e)
        return
    if as_json:
        _json({**result.to_dict(), "artifact_json": result.artifact_json, "artifact_md": result.artifact_md})
    else:
        for a in result.agents:
            extra = f" ({_lines(a.error)})" if a.error else ""  # a script's stderr: no escape reaches the terminal
            click.echo(f"  {a.name:<20} {a.status:<9} {a.latency_ms:7.0f} ms  {a.input_tokens}/{a.output_tokens} tok"
                       f"{extra}", err=True)
        click.echo(f"run {result.run_id}: {result.status}; artifacts: {result.artifact_md}", err=True)
        out = result.output
        if out is not None or result.status != "failed":  # a failed run has no answer: not a `null` on stdout
            text = out if isinstance(out, str) else orjson.dumps(out, option=orjson.OPT_INDENT_2).decode()
            # An untrusted script's answer: inert on a terminal (review28a), as it is where it is piped or redirected
            # (color=True: click would strip what looks like ANSI styles from it there).
            if sys.stdout.isatty():
                click.echo(_lines(text) if isinstance(out, str) else _json_text(text))
            else:
                click.echo(text, color=True)
    sys.exit(0 if result.status != "failed" else 1)


@command.command("create")
@click.argument("name")
@click.option("--from-file", "from_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Copy this YAML (validated) instead of writing a skeleton; the script files it names "
                   "are copied along from its folder.")
@click.option("--model", default="local", show_default=True, help="Model for the skeleton's profile.")
@click.option("--force", is_flag=True, help="Overwrite an existing ensemble.")
@project_option
def create(name: str, from_file: str | None, model: str, force: bool, project_dir: str) -> None:
    """Write a new project ensemble (.tierwise/ensembles/NAME.yaml)."""
    from tierwise.ensembles.carry import script_files
    from tierwise.ensembles.schema import parse_ensemble

    text = Path(from_file).read_text(encoding="utf-8") if from_file else skeleton(name, model)
    source = Path(from_file).resolve().parent if from_file else None
    try:
        path = _library(project_dir).create(name, text, overwrite=force, scripts_from=source)
    except ConfigError as e:
        _fail(e)
        return
    click.echo(f"wrote {path}")
    scripts = script_files(parse_ensemble(text, file=str(path))) if from_file else []
    if scripts:
        click.echo(f"with its scripts in {path.parent}: {', '.join(scripts)}")


@command.command("promote")
@click.argument("ensemble")
@click.option("--to", "to", type=click.Choice(["global", "library"]), default="global", show_default=True,
              help="global: your folder for every project; library: the shared library.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@project_option
def promote(ensemble: str, to: str, yes: bool, project_dir: str) -> None:
    """Move an ensemble up (3 good evaluations for global, 5 for the library)."""
    lib = _library(project_dir)
    try:
        plan = lib.promotion_plan(ensemble, to)
    except ConfigError as e:
        _fail(e)
        return
    click.echo(f"promote {ensemble} ({plan['good_evaluations']} good evaluations) to {plan['to']}"
               + (f", copying profiles: {', '.join(plan['profiles'])}" if plan["profiles"] else ""))
    if not yes and not click.confirm("proceed?", default=False):
        click.echo("not promoted")
        sys.exit(1)
    lib.promote(ensemble, to)
    click.echo("promoted")


@command.command("artifacts")
@click.argument("run_id", required=False)
@click.option("--ensemble", default=None, help="Only runs of this ensemble.")
@click.option("--markdown", "as_md", is_flag=True, help="Print a run's Markdown report.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@project_option
def artifacts(run_id: str | None, ensemble: str | None, as_md: bool, as_json: bool, project_dir: str) -> None:
    """List past runs, or show one (RUN_ID)."""
    from tierwise.ensembles.artifacts import list_artifacts, markdown, read_artifact

    root = _library(project_dir).artifacts_dir
    if run_id:
        try:
            data = read_artifact(root, run_id)
        except TierwiseError as e:
            _fail(e)
            return
        if as_md:
            click.echo(_lines(markdown(data)))
        else:
            _json(data)
        return
    rows = list_artifacts(root, ensemble)
    if as_json:
        _json(rows)
        return
    if not rows:
        click.echo("no runs yet")
    for r in rows:
        t = r["totals"] or {}
        click.echo(f"{r['run_id']}  {r['ensemble']:<24} {r['status']:<8} {r['latency_ms']:8.0f} ms  "
                   f"${t.get('cost_usd', 0):.6f}")
