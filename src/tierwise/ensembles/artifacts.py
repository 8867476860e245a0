"""Run artifacts: one JSON file (for tools) and one Markdown file (for people) per run.

They live in `.tierwise/artifacts/<ensemble>/<run_id>.{json,md}` so `tierwise ensemble
artifacts` and the MCP `analyze_execution` tool can read past runs without the ledger.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from tierwise.ensembles.confine import inside
from tierwise.ensembles.results import RunResult
from tierwise.ensembles.schema import NAME
from tierwise.errors import ConfigError, NotFound

# Runs whose artifacts a project keeps, newest first, across its ensembles: every run writes its input (up to a
# request body, 4 MiB over MCP) and every agent's output, and an MCP client may run ensembles in a loop.
KEEP_RUNS = 1000


def prune_artifacts(root: Path, keep: int = KEEP_RUNS) -> int:
    """Delete the artifacts of all but the newest `keep` runs (by when their JSON was written: run ids
    tell only the second); the number of runs removed. A file that went meanwhile is skipped."""
    runs: list[tuple[int, str, Path]] = []
    try:
        folders = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for folder in folders:
        try:
            runs += [(e.stat(follow_symlinks=False).st_mtime_ns, e.name[:-5], Path(folder.path))
                     for e in os.scandir(folder.path) if e.name.endswith(".json")]
        except OSError:
            continue
    if len(runs) <= keep:
        return 0
    runs.sort(reverse=True)
    for _, run_id, run_dir in runs[keep:]:
        for suffix in (".json", ".md"):
            try:
                (run_dir / (run_id + suffix)).unlink()
            except OSError:
                pass
    return len(runs) - keep


def write_artifacts(run: RunResult, root: Path) -> tuple[Path, Path]:
    folder = root / run.ensemble
    folder.mkdir(parents=True, exist_ok=True)
    jpath, mpath = folder / f"{run.run_id}.json", folder / f"{run.run_id}.md"
    run.artifact_json, run.artifact_md = str(jpath), str(mpath)
    jpath.write_bytes(orjson.dumps(run.to_dict(), default=str, option=orjson.OPT_INDENT_2))
    mpath.write_text(markdown(run.to_dict()), encoding="utf-8")
    return jpath, mpath


def _short(value: Any, n: int = 80) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    text = " ".join(text.split())
    return (text[: n - 1] + "…" if len(text) > n else text).replace("|", "\\|")


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:.6f}"


def markdown(run: dict[str, Any]) -> str:
    t = run["totals"]
    lines = [
        f"# Ensemble run `{run['ensemble']}` — {run['run_id']}",
        "",
        f"- status: **{run['status']}** (final agent `{run['final_agent']}`)",
        f"- latency: {run['latency_ms']:.0f} ms",
        f"- tokens: {t['input_tokens']} in / {t['output_tokens']} out; cost "
        + (f"unknown (no price for a model of {', '.join(t['cost_unknown_agents'])})" if t.get("cost_unknown_agents")
           else _money(t['cost_usd'])),
        f"- agents: {t['ok']} ok, {t['failed']} failed, {t['skipped']} skipped",
        "",
        "| agent | kind | status | model | tokens in | tokens out | cost | latency ms | output / error |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for a in run["agents"]:
        shown = a["error"] if a["status"] not in ("ok",) and a["error"] else _short(a["output"])
        lines.append(
            f"| {a['name']} | {a['kind']} | {a['status']} | {a['model'] or '-'} | {a['input_tokens']} | "
            f"{a['output_tokens']} | {_money(a['cost_usd'])} | {a['latency_ms']:.0f} | {_short(shown or '')} |"
        )
    for a in run["agents"]:
        if a.get("items"):
            lines += ["", f"## fan-out `{a['name']}`", "", "| item | status | output / error |", "|---:|---|---|"]
            for it in a["items"]:
                lines.append(f"| {it['index']} | {it['status']} | {_short(it['error'] or it['output'] or '')} |")
    for a in run["agents"]:
        raws = [(f"`{a['name']}`", a.get("raw_output"))] + [
            (f"`{a['name']}` item {it['index']}", it.get("raw_output")) for it in a.get("items") or ()]
        for who, raw in raws:
            if raw:
                lines += ["", f"## Rejected answer of {who}", "", "```", raw, "```"]
    lines += ["", "## Output", "", "```", run["output"] if isinstance(run["output"], str)
              else orjson.dumps(run["output"], default=str, option=orjson.OPT_INDENT_2).decode(), "```", ""]
    return "\n".join(lines)


def list_artifacts(root: Path, ensemble: str | None = None) -> list[dict[str, Any]]:
    """Newest first: run id, ensemble, status, latency, totals."""
    out = []
    folders = [root / ensemble] if ensemble else (sorted(p for p in root.iterdir() if p.is_dir())
                                                   if root.is_dir() else [])
    for folder in folders:
        for f in folder.glob("*.json"):
            try:
                d = orjson.loads(f.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            out.append({"run_id": d.get("run_id"), "ensemble": d.get("ensemble"), "status": d.get("status"),
                        "started_at": d.get("started_at"), "latency_ms": d.get("latency_ms"),
                        "totals": d.get("totals"), "path": str(f)})
    out.sort(key=lambda r: r.get("started_at") or 0, reverse=True)
    return out


def read_artifact(root: Path, run_id: str) -> dict[str, Any]:
    """A run's JSON artifact by run id (a plain name: no path, no glob), read only from inside `root`."""
    if not isinstance(run_id, str) or not NAME.match(run_id):
        raise ConfigError(f"{run_id!r} is not a run id")
    if root.is_dir():
        for f in root.glob(f"*/{run_id}.json"):
            if not inside(f, root):  # a symlink leading out: never read nor echo it
                continue
            try:
                data = orjson.loads(f.read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                raise ConfigError(f"artifact unreadable: {e}", file=str(f)) from None
            if not isinstance(data, dict) or not isinstance(data.get("agents"), list) \
                    or not all(isinstance(a, dict) for a in data["agents"]):
                raise ConfigError("not a run artifact (expected an object with a list of agents)", file=str(f))
            return data
    raise NotFound(f"no run {run_id!r} among the artifacts in {root}")
