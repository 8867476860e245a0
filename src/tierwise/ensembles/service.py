"""One object the CLI, the MCP server and the gateway route share: run, validate, record.

It ties a Gateway (models, pricing, breakers, ledger) to a Library (where ensembles live):
a run writes its artifacts and one ledger row of kind `ensemble` with every call's steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierwise.ensembles.artifacts import prune_artifacts, write_artifacts
from tierwise.ensembles.caller import GatewayCaller, RunCaller, SpendScope
from tierwise.ensembles.executor import Executor, new_run_id
from tierwise.ensembles.library import Library
from tierwise.ensembles.results import RunResult
from tierwise.ensembles.schema import Ensemble
from tierwise.errors import ConfigError
from tierwise.ledger.records import LedgerRecord

if TYPE_CHECKING:
    from tierwise.gateway import Gateway


class EnsembleService:
    def __init__(self, gateway: Gateway, library: Library, *, limits: dict[str, int] | None = None,
                 write_artifacts: bool = True) -> None:
        self.gateway = gateway
        self.library = library
        self.caller = GatewayCaller(gateway, limits)
        self.write_artifacts = write_artifacts

    def validate(self, ens: Ensemble) -> list[str]:
        """Problems that would stop a run: unknown profiles, models, nested ensembles, scripts."""
        return self.library.problems(ens, self.caller.knows)

    def load_checked(self, ref: str) -> Ensemble:
        ens = self.library.load(ref)
        problems = self.validate(ens)
        if problems:
            raise ConfigError("cannot run:\n  " + "\n  ".join(problems), file=ens.path)
        return ens

    async def run(self, ref: str | Ensemble, run_input: Any, *, route: str | None = None,
                  record: bool = True, spend: SpendScope | None = None) -> RunResult:
        """Run and write artifacts; `record=False` when the caller's own ledger row carries the calls.
        Every model call is admitted by the budgets that cover `spend` (the request running the ensemble;
        by default the route `ensemble:<name>` its ledger row names, so a run of the CLI or MCP too)."""
        ens = self.load_checked(ref) if isinstance(ref, str) else ref
        if isinstance(ref, Ensemble):
            problems = self.validate(ens)
            if problems:
                raise ConfigError("cannot run:\n  " + "\n  ".join(problems), file=ens.path)
        if spend is None:
            spend = SpendScope(route or f"ensemble:{ens.name}")
        caller = RunCaller(self.caller, ens.concurrency or {}, spend)
        run = await Executor(caller, self.library).run(ens, run_input, run_id=new_run_id())
        if self.write_artifacts:
            write_artifacts(run, self.library.artifacts_dir)
            prune_artifacts(self.library.artifacts_dir, self.library.keep_runs)
        if record:
            self.record(run, route=route)
        return run

    def record(self, run: RunResult, *, route: str | None = None) -> None:
        ledger = self.gateway.ledger
        if ledger is None:
            return
        t = run.totals()
        final = run.agent(run.final_agent)
        steps = [s for a in run.agents for s in a.steps]
        local = all(self._locality(a.model) != "remote" for a in run.agents if a.kind == "llm" and a.model)
        rec = LedgerRecord(
            request_id="ens_" + run.run_id,
            ts=time.time(),
            route=route or f"ensemble:{run.ensemble}",
            kind="ensemble",
            status=200 if run.status != "failed" else 502,
            error_kind=None if run.status != "failed" else "ensemble_failed",
            error_message=None if run.status != "failed" else (final.error or "final agent failed")[:500],
            decision=run.final_agent,
            reason=f"ensemble {run.ensemble}: {t['ok']}/{t['agents']} agents ok",
            locality="local" if local else "remote",
            model=final.model,
            provider=final.provider,
            feature="ensemble",
            input_tokens=t["input_tokens"],
            output_tokens=t["output_tokens"],
            cost_usd=t["cost_usd"],
            latency_ms=run.latency_ms,
            steps=steps,
            extra={"ensemble": run.ensemble, "run_id": run.run_id, "artifact": run.artifact_json},
        )
        try:
            ledger.submit(rec)
        except Exception:  # the ledger must never break a run
            pass

    def _locality(self, model: str | None) -> str | None:
        for d in self.gateway.deployments.values():
            if d.cfg.model == model:
                return d.locality
        return None


def default_library(base_dir: str | Path = ".") -> Library:
    return Library(base_dir)
