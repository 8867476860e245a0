"""The MCP server (`tierwise mcp`): ensembles, routing advice and savings as tools.

A frontier agent (Claude Code: `claude mcp add tierwise -- tierwise mcp`) delegates
extraction, classification and summarisation to local ensembles through these tools. Every
tool is a thin layer over `EnsembleService` / `Library` / the ledger, so the CLI, the
gateway and MCP behave the same. Errors come back as tool errors with the same messages the
CLI prints; nothing here reads or returns secrets.

Every argument that names something on disk is a plain name looked up in the ensemble
folders (`Library.find_name`), never a path: a client cannot make a tool open, run or echo
a file outside them. Ensembles created here are untrusted (their scripts run sandboxed).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from tierwise.endpoint_url import endpoint
from tierwise.ensembles.artifacts import read_artifact
from tierwise.ensembles.library import PROMOTION_THRESHOLD, plain_name
from tierwise.ensembles.service import EnsembleService
from tierwise.errors import ConfigError, TierwiseError
from tierwise.secret_scrub import scrub_value

INSTRUCTIONS = (
    "tierwise runs ensembles of small local models (extract -> analyse -> synthesise) and advises which tier "
    "should handle a task. Use route_task first; list_ensembles / invoke_ensemble to delegate cheap work "
    "locally; analyze_execution for per-agent usage; record_evaluation after checking a result."
)

# Work small local models do well (and what they do badly), for route_task's advice.
_LOCAL_WORDS = re.compile(
    r"\b(extract\w*|classif\w*|categori[sz]\w*|label\w*|tag\w*|summar\w*|redact\w*|anonymi[sz]\w*|"
    r"translat\w*|format\w*|convert\w*|parse|parsing|list|count|detect\w*|triage|sentiment|keywords?|"
    r"rewrite|rephrase|spell\w*|grammar)\b", re.I)
_FRONTIER_WORDS = re.compile(
    r"\b(architect\w*|design\w*|prove|proof|reason\w*|plan\w*|refactor\w*|debug\w*|novel|research|"
    r"strateg\w*|security|legal|medical|negotiat\w*|ambiguous|multi-step|complex|creative|math\w*)\b", re.I)


def _tool_error(e: TierwiseError) -> ToolError:
    return ToolError(e.message)


def build_mcp_server(service: EnsembleService) -> MCPServer:
    lib = service.library
    gw = service.gateway
    mcp = MCPServer("tierwise", instructions=INSTRUCTIONS)

    @mcp.tool()
    def list_ensembles() -> dict[str, Any]:
        """Ensembles available here (project, global folder, shared library), with validity."""
        return {"ensembles": [e.to_dict() for e in lib.entries()]}

    @mcp.tool()
    def list_profiles() -> dict[str, Any]:
        """Model profiles (model, tier, settings, fallback) and the price per million tokens of their model."""
        out = []
        for name, (level, prof) in lib.profiles().items():
            if isinstance(prof, ConfigError):
                out.append({"name": name, "level": level, "valid": False, "error": prof.message})
                continue
            dep = gw.deployments.get(prof.model)
            price = dep.price.model_dump() if dep is not None and dep.price is not None else None
            out.append({"name": name, "level": level, "valid": True, **prof.model_dump(),
                        "model_known": service.caller.knows(prof.model), "price_per_million": price})
        return {"profiles": out}

    @mcp.tool()
    def validate_ensemble(ensemble: str | None = None, yaml_text: str | None = None) -> dict[str, Any]:
        """Validate an ensemble by name, or YAML text before creating it; lists every problem."""
        if not ensemble and not yaml_text:
            raise ToolError("give `ensemble` (a name) or `yaml_text`")
        try:
            ens = lib.load_name(ensemble) if ensemble else lib.parse_draft(yaml_text or "")
        except ConfigError as e:
            return {"valid": False, "problems": [e.message]}
        problems = service.validate(ens)
        return {"valid": not problems, "name": ens.name, "agents": [a.name for a in ens.agents],
                "problems": problems}

    @mcp.tool()
    async def check_ensemble_runnable(ensemble: str, probe: bool = True) -> dict[str, Any]:
        """Can this ensemble run now? Validates it and checks the providers its models use answer."""
        try:
            ens = lib.load_name(ensemble)
        except ConfigError as e:
            return {"runnable": False, "problems": [e.message], "providers": {}}
        problems = service.validate(ens)
        providers: dict[str, Any] = {}
        for model in sorted(_models_of(service, ens)):
            dep = gw.deployments.get(model)
            if dep is None:
                continue
            name = dep.provider.name
            if name not in providers:
                providers[name] = await _provider_state(service, name, probe)
        down = [n for n, s in providers.items() if s.get("reachable") is False or s.get("breakers_open")]
        problems += [f"provider {n!r} is not answering" for n in down]
        return {"runnable": not problems, "problems": problems, "providers": providers}

    @mcp.tool()
    def create_ensemble(name: str, yaml_text: str, overwrite: bool = False) -> dict[str, Any]:
        """Create a project ensemble from YAML (validated first; nothing is written when invalid)."""
        try:
            path = lib.create(name, yaml_text, overwrite=overwrite)
            ens = lib.load_name(name)
        except ConfigError as e:
            raise _tool_error(e) from None
        return {"created": True, "path": str(path), "problems": service.validate(ens)}

    @mcp.tool()
    async def invoke_ensemble(ensemble: str, input: str | dict[str, Any] | list[Any]) -> dict[str, Any]:
        """Run an ensemble on an input; returns its final output, status per agent and totals."""
        try:
            run = await service.run(lib.load_name(ensemble), input)
        except TierwiseError as e:
            raise _tool_error(e) from None
        return {
            "run_id": run.run_id, "status": run.status, "output": run.output, "totals": run.totals(),
            "agents": [{"name": a.name, "status": a.status, "error": a.error} for a in run.agents],
            "artifact_json": run.artifact_json, "artifact_md": run.artifact_md,
        }

    @mcp.tool()
    def analyze_execution(run_id: str) -> dict[str, Any]:
        """Per-agent usage of a past run (model, tokens, cost, latency, status) and where time and money went."""
        try:
            data = read_artifact(lib.artifacts_dir, run_id)
        except TierwiseError as e:
            raise _tool_error(e) from None
        agents = [{k: a.get(k) for k in ("name", "kind", "status", "model", "provider", "input_tokens",
                                         "output_tokens", "cost_usd", "latency_ms", "fallback_used", "error")}
                  for a in data["agents"]]
        ran = [a for a in agents if a["latency_ms"]]
        slowest = max(ran, key=lambda a: a["latency_ms"])["name"] if ran else None
        priciest = max(agents, key=lambda a: a["cost_usd"] or 0)["name"] if agents else None
        return {"run_id": run_id, "ensemble": data.get("ensemble"), "status": data.get("status"),
                "totals": data.get("totals"), "agents": agents, "slowest_agent": slowest,
                "most_expensive_agent": priciest,
                "failed_agents": [a["name"] for a in agents if a["status"] in ("failed", "timeout", "partial")]}

    @mcp.tool()
    async def get_provider_status(probe: bool = True) -> dict[str, Any]:
        """Each configured provider: kind, locality, models, breaker state and whether it answers now."""
        names = list(gw.cfg.providers)
        states = await asyncio.gather(*(_provider_state(service, n, probe) for n in names))
        return {"providers": dict(zip(names, states, strict=True))}

    @mcp.tool()
    def promote_ensemble(ensemble: str, to: str = "global", confirm: bool = False) -> dict[str, Any]:
        """Promote an ensemble to the global folder (3 good evaluations) or the library (5).

        Without confirm=true only the plan is returned: show it to the user and ask first."""
        try:
            plain_name(ensemble)
            plan = lib.promotion_plan(ensemble, to)  # type: ignore[arg-type]
            if not confirm:
                return {**plan, "promoted": False, "needs_confirmation": True}
            return lib.promote(ensemble, to)  # type: ignore[arg-type]
        except ConfigError as e:
            raise _tool_error(e) from None

    @mcp.tool()
    def record_evaluation(ensemble: str, verdict: str, run_id: str | None = None, note: str = "") -> dict[str, Any]:
        """Record whether a run's result was good or bad; good ones count toward promotion."""
        from tierwise.learning.feedback import MAX_REASON, clean_note, link_mcp_evaluation

        if len(note) > MAX_REASON:
            raise ToolError(f"`note` must be at most {MAX_REASON} characters")
        note = clean_note(gw, note)  # an agent's free text: kept in the evaluations file and the ledger
        try:
            rec = lib.record_evaluation(ensemble, run_id, verdict, note)
        except ConfigError as e:
            raise _tool_error(e) from None
        good = lib.good_count(rec["ensemble"])
        rec = {**rec, "ledger_feedback": link_mcp_evaluation(gw, rec["ensemble"], run_id, verdict, note)}
        return {"recorded": rec, "good_evaluations": good,
                "promotable_to": [lvl for lvl, n in PROMOTION_THRESHOLD.items() if good >= n]}

    @mcp.tool()
    def route_task(task: str, input_tokens: int | None = None, needs_images: bool = False,
                   data_classes: list[str] | None = None, sample: str | None = None,
                   route: str | None = None) -> dict[str, Any]:
        """Which tier (local or frontier) should handle a described task, and why; names fitting ensembles.
        Data classes (named, or found in the task and sample) are checked against the privacy policy."""
        try:
            return route_advice(service, task, input_tokens, needs_images, data_classes, sample, route)
        except ValueError as e:
            raise ToolError(str(e)) from None

    @mcp.tool()
    def savings_report(by: str = "route", days: float | None = None) -> dict[str, Any]:
        """Spend and savings from the ledger, grouped by route, model, day, locality or feature."""
        from tierwise.ledger.report import savings_report

        if gw.ledger is None:
            raise ToolError("the ledger is disabled in this config")
        if by not in ("route", "model", "day", "locality", "feature"):
            raise ToolError("by must be one of: route, model, day, locality, feature")
        gw.ledger.flush()
        since = time.time() - days * 86400 if days else None
        # Group keys are ledger text (features are the clients'): scrubbed as `tierwise report` prints them, for
        # rows an older version stored unscrubbed (session 29).
        return scrub_value(savings_report(gw.ledger, by, since=since))  # type: ignore[arg-type,no-any-return]

    return mcp


def _models_of(service: EnsembleService, ens: Any) -> set[str]:
    out: set[str] = set()
    for a in ens.agents:
        if a.model:
            out.add(a.model)
        for ref in filter(None, (a.profile, a.fallback_profile)):
            try:
                out.add(service.library.profile(ref, ens).model)
            except ConfigError:
                pass
    return out


async def _provider_state(service: EnsembleService, name: str, probe: bool) -> dict[str, Any]:
    gw = service.gateway
    pc = gw.cfg.providers[name]
    deps = [d for d in gw.deployments.values() if d.provider.name == name]
    state: dict[str, Any] = {
        "kind": pc.kind, "locality": pc.locality,
        "models": [d.name for d in deps],
        "breakers_open": [d.name for d in deps if d.breaker.state == "open"],
        "concurrency_limit": service.caller.limit_for(name),
    }
    if probe:
        state["reachable"], state["detail"] = await _probe(pc.base_url)
    return state


async def _probe(base_url: str) -> tuple[bool, str]:
    """Any HTTP answer from the server (even 401/404) means it is up; only no answer means down."""
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        # Not followed: an answer is all it needs, and the gateway follows no upstream's redirect (session 29).
        async with aiohttp.ClientSession(timeout=timeout) as s, s.get(endpoint(base_url, "/models"),
                                                                      allow_redirects=False) as r:
            return True, f"HTTP {r.status}"
    except (TimeoutError, aiohttp.ClientError) as e:
        return False, type(e).__name__


def route_advice(service: EnsembleService, task: str, input_tokens: int | None,
                 needs_images: bool, data_classes: list[str] | None = None, sample: str | None = None,
                 route: str | None = None) -> dict[str, Any]:
    gw = service.gateway
    local_models = [n for n, d in gw.deployments.items() if d.locality == "local"]
    remote_models = [n for n, d in gw.deployments.items() if d.locality == "remote"]
    local_hits = sorted({m.group(0).lower() for m in _LOCAL_WORDS.finditer(task)})
    frontier_hits = sorted({m.group(0).lower() for m in _FRONTIER_WORDS.finditer(task)})
    reasons: list[str] = []
    tier = "local"
    windows = [d.cfg.context_window for n, d in gw.deployments.items() if n in local_models and d.cfg.context_window]
    if not local_models:
        tier = "frontier"
        reasons.append("no local model is configured")
    elif needs_images and not any(gw.deployments[n].cfg.vision for n in local_models):
        tier = "frontier"
        reasons.append("the task needs images and no local model has vision")
    elif input_tokens and windows and input_tokens > max(windows) * 0.8:
        tier = "frontier"
        reasons.append(f"~{input_tokens} input tokens exceed what the local models hold ({max(windows)})")
    elif frontier_hits and len(frontier_hits) >= len(local_hits):
        tier = "frontier"
        reasons.append("it asks for open-ended reasoning (" + ", ".join(frontier_hits) + ")")
    elif local_hits:
        reasons.append("it is structured, well-bounded work small models do well (" + ", ".join(local_hits) + ")")
    else:
        reasons.append("nothing marks it as hard; try local first and escalate if the answer fails checks")
    words = set(re.findall(r"[a-z]{4,}", task.lower()))
    matches = []
    for e in service.library.entries():
        hay = set(re.findall(r"[a-z]{4,}", f"{e.name.replace('-', ' ')} {e.description}".lower()))
        common = words & hay
        if common and e.error is None:
            matches.append({"ensemble": e.name, "matched": sorted(common)})
    matches.sort(key=lambda m: -len(m["matched"]))
    privacy = None
    if gw.cfg.privacy is not None or data_classes:  # the privacy package only when it has work
        from tierwise.privacy.routing_advice import privacy_advice

        privacy = privacy_advice(gw, task, sample, data_classes, route)
    if privacy is not None and not privacy["frontier_allowed"]:
        remote_models = []
        if tier == "frontier":
            tier = "local"
            reasons.append("but the data may not go to a remote model: " + privacy["reason"])
    elif privacy is not None and privacy.get("frontier_models") is not None:
        remote_models = [m for m in remote_models if m in privacy["frontier_models"]]
    ref = gw.cfg.reference_model
    suggested = (local_models[:1] if tier == "local" else
                 ([ref] if ref and ref in remote_models else remote_models[:1]))
    out: dict[str, Any] = {"tier": tier, "model": suggested[0] if suggested else None, "reasons": reasons,
           "ensembles": matches[:5] if tier == "local" else []}
    if privacy is not None:
        out["privacy"] = privacy
    return out
