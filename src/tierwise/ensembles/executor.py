"""The DAG executor: every agent starts the moment its dependencies are done.

Agents are asyncio tasks that await their dependencies' tasks, so independent branches
overlap and a run takes about as long as its critical path; concurrency per provider is
capped by the caller's semaphores. A failing agent marks itself failed (its dependents, and
theirs, are skipped with the reason) and the run goes on: partial failure is reported, never hidden.
Cancelling a run (or any error escaping it) cancels every agent task and kills running scripts.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from tierwise.canonical import ResponseFormat
from tierwise.ensembles.caller import CallFailed, ModelCaller
from tierwise.ensembles.guard import GuardError, evaluate_guard
from tierwise.ensembles.results import AgentResult, CallOutcome, ItemResult, RunResult
from tierwise.ensembles.schema import Agent, Ensemble, Profile
from tierwise.ensembles.scripts import ScriptFailed, command_for, host_environment, run_script
from tierwise.errors import ConfigError
from tierwise.verifiers.json_check import NO_REMOTE_REFS

MAX_NESTING = 8
SCRIPT_SLOTS = 2 * (os.cpu_count() or 2)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.S)
_SCHEMA_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


class Resolver(Protocol):
    """Finds profiles and nested ensembles by name (see library.py)."""

    def profile(self, name: str, ens: Ensemble) -> Profile: ...

    def ensemble(self, ref: str, ens: Ensemble) -> Ensemble: ...

    def trusted(self, ens: Ensemble) -> bool: ...

    # Names a trusted script gets from the gateway's environment beyond scripts.SCRIPT_ENV (`ensembles.script_env`).
    script_env: tuple[str, ...]


class AgentError(Exception):
    """An agent failed for a reason worth showing the user as is; `raw` is the answer it rejected
    (a model's text that is not JSON or breaks the schema), kept in the artifact for debugging."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


def reason(e: Exception) -> str:
    """An unexpected error as one line for the user: its message, no stack trace."""
    return f"{type(e).__name__}: {getattr(e, 'message', None) or e}"


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode()


def parse_json_answer(text: str) -> Any:
    """Models wrap JSON in fences or prose; take the fenced body, else the outermost {...} / [...]."""
    t = text.strip()
    m = _FENCE.match(t)
    if m:
        t = m.group(1).strip()
    try:
        return orjson.loads(t)
    except orjson.JSONDecodeError:
        pass
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = t.find(open_), t.rfind(close)
        if 0 <= i < j:
            try:
                return orjson.loads(t[i:j + 1])
            except orjson.JSONDecodeError:
                continue
    raise AgentError("the answer is not JSON")


def pick(value: Any, key: str) -> Any:
    """`a.b.0` walks mappings by key and lists by index; a missing key is an error that names it."""
    cur = value
    if isinstance(cur, str):
        try:
            cur = parse_json_answer(cur)
        except AgentError:
            raise AgentError(f"input_key {key!r}: the input is text, not JSON") from None
    for part in key.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise AgentError(f"input_key {key!r}: no {part!r} in the input")
    return cur


class CallQuota:
    """What one run may still start, nested runs included: model calls (a fallback's too), script runs,
    nested runs and redact steps. Fan-outs multiply through nesting (an array of a thousand items whose
    every item is a nested run fanning out over a thousand more), and the arrays are model output."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int = 1) -> None:
        if self.used + n > self.limit:
            raise AgentError(f"the run reached its max_calls ({self.limit} model calls, script runs and nested "
                             f"runs, nested ensembles included): {n} more refused")
        self.used += n


class Executor:
    def __init__(self, caller: ModelCaller, resolver: Resolver, *, depth: int = 0,
                 clock: Callable[[], float] = time.perf_counter, scripts: asyncio.Semaphore | None = None,
                 quota: CallQuota | None = None) -> None:
        self.caller = caller
        self.resolver = resolver
        self.depth = depth
        self.clock = clock
        # Script processes at once in a run, nested ensembles included: a fan-out over a thousand
        # items must not fork a thousand processes.
        self.scripts = scripts or asyncio.Semaphore(SCRIPT_SLOTS)
        self.quota = quota  # shared with nested runs; the top run's ensemble sets it

    async def run(self, ens: Ensemble, run_input: Any, *, run_id: str | None = None) -> RunResult:
        if self.quota is None:
            self.quota = CallQuota(ens.max_calls)
        run_id = run_id or new_run_id()
        started_at = time.time()
        t0 = self.clock()
        results = {a.name: AgentResult(a.name, a.kind) for a in ens.agents}
        tasks: dict[str, asyncio.Task[None]] = {}
        blocked: set[str] = set()  # skipped because something upstream failed (not because of `when`)
        for a in ens.agents:  # topological creation is not needed: tasks look each other up lazily
            tasks[a.name] = asyncio.ensure_future(self._agent(ens, a, run_input, results, tasks, blocked, t0))
        status: Any
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:  # cancelled, or anything else: no agent task or script outlives the run
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            for r in results.values():
                if r.ended_s is None:
                    r.status, r.error = "cancelled", "the run was cancelled"
            raise
        final = results[ens.final]
        failed = [r for r in results.values() if r.status in ("failed", "timeout", "partial")]
        if final.status in ("ok", "partial"):
            status = "partial" if failed else "ok"
        else:
            status = "failed"
        return RunResult(
            run_id=run_id, ensemble=ens.name, status=status, output=final.output,
            agents=[results[a.name] for a in ens.agents], started_at=started_at,
            latency_ms=(self.clock() - t0) * 1000, input=run_input, final_agent=ens.final,
        )

    # ------------------------------------------------------------------ one agent

    async def _agent(self, ens: Ensemble, a: Agent, run_input: Any, results: dict[str, AgentResult],
                     tasks: dict[str, asyncio.Task[None]], blocked: set[str], t0: float) -> None:
        res = results[a.name]
        if a.depends_on:
            await asyncio.gather(*(asyncio.shield(tasks[d]) for d in a.depends_on))
        bad = [d for d in a.depends_on if results[d].status not in ("ok", "partial", "skipped") or d in blocked]
        if bad:
            res.status, res.error = "skipped", f"dependency {bad[0]!r} {results[bad[0]].status}"
            if bad[0] in blocked:
                res.error += f" ({results[bad[0]].error})"
            blocked.add(a.name)
            return
        scope = {"input": run_input, **{d: results[d].output for d in a.depends_on}}
        if a.when:
            try:
                go = evaluate_guard(a.when, scope)
            except GuardError as e:
                res.status, res.error = "failed", f"when: {e}"
                res.started_s = res.ended_s = self.clock() - t0
                return
            if not go:
                res.status, res.error = "skipped", f"when {a.when!r} is false"
                return
        if a.depends_on:
            deps = [d for d in a.depends_on if d != a.fan_out] or ([a.fan_out] if a.fan_out else [])
            value = scope[deps[0]] if len(deps) == 1 else {d: scope[d] for d in deps}
        else:
            value = run_input
        res.started_s = self.clock() - t0
        try:
            if a.fan_out:
                await self._fan_out(ens, a, results[a.fan_out].output, value, res)
            else:
                if a.input_key:
                    value = pick(value, a.input_key)
                res.output = await self._once(ens, a, value, res)
                res.status = "ok"
        except AgentError as e:
            res.status, res.error = "failed", str(e)
            res.raw_output = e.raw
        except TimeoutError:
            res.status, res.error = "timeout", f"no answer within {self._timeout(ens, a):g}s"
        except asyncio.CancelledError:
            res.status, res.error = "cancelled", "the run was cancelled"
            res.ended_s = self.clock() - t0
            raise
        except Exception as e:  # a bug or an odd input in one agent fails that agent, not the run
            res.status, res.error = "failed", reason(e)
        res.ended_s = self.clock() - t0
        res.latency_ms = (res.ended_s - res.started_s) * 1000

    async def _fan_out(self, ens: Ensemble, a: Agent, source: Any, context_value: Any, res: AgentResult) -> None:
        items = pick(source, a.input_key) if a.input_key else source
        if isinstance(items, str):
            try:
                items = parse_json_answer(items)
            except AgentError:
                pass
        if not isinstance(items, list):
            raise AgentError(f"fan_out: {a.fan_out!r} did not produce an array (got {type(items).__name__})")
        if len(items) > a.max_items:  # the array may be a model's (or a prompt injection's) output
            raise AgentError(f"fan_out: {a.fan_out!r} produced {len(items)} items; this agent maps over at most "
                             f"{a.max_items} (max_items)")

        self._quota().take(len(items))  # before any item starts: a refused fan-out makes no task at all

        async def one(i: int, item: Any) -> ItemResult:
            t = self.clock()
            try:
                out = await self._once(ens, a, item, res, counted=True)
                return ItemResult(i, "ok", out, latency_ms=(self.clock() - t) * 1000)
            except AgentError as e:
                return ItemResult(i, "failed", None, str(e), (self.clock() - t) * 1000, raw_output=e.raw)
            except TimeoutError:
                return ItemResult(i, "timeout", None, f"no answer within {self._timeout(ens, a):g}s",
                                  (self.clock() - t) * 1000)
            except Exception as e:
                return ItemResult(i, "failed", None, reason(e), (self.clock() - t) * 1000)

        res.items = list(await asyncio.gather(*(one(i, it) for i, it in enumerate(items))))
        res.output = [r.output for r in res.items]
        ok = sum(r.status == "ok" for r in res.items)
        res.status = "ok" if ok == len(res.items) else ("partial" if ok else "failed")
        if res.status != "ok":
            bad = [r for r in res.items if r.status != "ok"]
            res.error = f"{len(bad)} of {len(res.items)} items failed; first: item {bad[0].index}: {bad[0].error}"

    def _timeout(self, ens: Ensemble, a: Agent) -> float:
        if a.timeout:
            return a.timeout
        if a.profile:
            try:
                return self.resolver.profile(a.profile, ens).timeout
            except ConfigError:
                return 120.0
        return 120.0

    def _quota(self) -> CallQuota:
        assert self.quota is not None  # (set by run)
        return self.quota

    async def _once(self, ens: Ensemble, a: Agent, value: Any, res: AgentResult, *, counted: bool = False) -> Any:
        """One execution of the agent on one input (a fan-out calls this per item, its items counted)."""
        if not counted:
            self._quota().take()
        if a.kind == "script":
            assert a.script is not None
            trusted = self.resolver.trusted(ens)
            try:
                argv = command_for(a.script, ens.base_dir, trusted=trusted)
                async with self.scripts:
                    out = await run_script(argv, {"input": value, "agent": a.name, "ensemble": ens.name},
                                           self._timeout(ens, a), sandbox_folder=None if trusted else ens.base_dir,
                                           env=host_environment(self.resolver.script_env) if trusted else None)
            except ScriptFailed as e:
                raise AgentError(f"script: {e}") from None
            return self._check_output(a, out)
        if a.kind == "ensemble":
            return await self._nested(ens, a, value, res)
        if a.kind == "redact":
            from tierwise.privacy.ensemble_step import RedactFailed, run_redact
            try:
                out = await run_redact(a.redact, value, getattr(self.caller, "gateway", None))  # type: ignore[arg-type]
            except RedactFailed as e:
                raise AgentError(f"redact: {e}") from None
            return self._check_output(a, out)
        return await self._llm(ens, a, value, res)

    async def _nested(self, ens: Ensemble, a: Agent, value: Any, res: AgentResult) -> Any:
        if self.depth >= MAX_NESTING:
            raise AgentError(f"ensembles nest deeper than {MAX_NESTING} levels")
        assert a.ensemble is not None
        try:
            sub = self.resolver.ensemble(a.ensemble, ens)
        except ConfigError as e:
            raise AgentError(f"ensemble: {e.message}") from None
        inner = Executor(self.caller, self.resolver, depth=self.depth + 1, clock=self.clock, scripts=self.scripts,
                         quota=self.quota)
        async with asyncio.timeout(a.timeout):
            run = await inner.run(sub, value)
        totals = run.totals()
        res.input_tokens += totals["input_tokens"]
        res.output_tokens += totals["output_tokens"]
        res.add_cost(totals["cost_usd"])
        res.nested = run.to_dict()
        if run.status == "failed":
            raise AgentError(f"nested ensemble {sub.name!r} failed: {run.agent(run.final_agent).error}")
        return self._check_output(a, run.output)

    async def _llm(self, ens: Ensemble, a: Agent, value: Any, res: AgentResult) -> Any:
        profile = self._profile_for(ens, a)
        prompt = self._prompt(a, value)
        fmt = self.response_format(a)
        tried: list[str] = []
        raw: str | None = None  # the last answer rejected, kept when every profile fails
        while True:
            tried.append(profile.name or profile.model)
            timeout = a.timeout or profile.timeout
            try:
                async with asyncio.timeout(timeout):
                    outcome = await self.caller.call(profile, prompt, response_format=fmt)
                self._account(res, profile, outcome)
                return self._check_output(a, outcome.text)
            except (CallFailed, AgentError, TimeoutError) as e:
                if isinstance(e, CallFailed):
                    res.steps.extend(e.steps)
                if isinstance(e, AgentError) and e.raw is not None:
                    raw = e.raw
                nxt = a.fallback_profile if len(tried) == 1 and a.fallback_profile else profile.fallback
                if not nxt or nxt in tried:
                    if isinstance(e, TimeoutError):
                        raise
                    msg = e.message if isinstance(e, CallFailed) else str(e)
                    raise AgentError(f"{tried[-1]}: {msg}", raw) from None
                self._quota().take()  # the fallback's call
                try:
                    profile = self.resolver.profile(nxt, ens)
                except ConfigError as ce:
                    raise AgentError(f"fallback profile: {ce.message}") from None
                res.fallback_used = profile.name

    @staticmethod
    def response_format(a: Agent) -> ResponseFormat | None:
        """The agent's `output_schema` as the request's response_format, so a server can constrain its
        output to it. `output: json` without a schema sends none: OpenAI's `json_object` mode allows
        only an object, and such agents are often asked for an array."""
        if a.output_schema is not None:
            return ResponseFormat("json_schema", a.output_schema, _SCHEMA_NAME_BAD.sub("_", a.name)[:64])
        return None

    def _profile_for(self, ens: Ensemble, a: Agent) -> Profile:
        if a.model:
            return Profile(name=a.model, model=a.model, timeout=a.timeout or 120.0)
        assert a.profile is not None
        try:
            return self.resolver.profile(a.profile, ens)
        except ConfigError as e:
            raise AgentError(e.message) from None

    @staticmethod
    def _prompt(a: Agent, value: Any) -> str:
        text = render(value)
        if not a.prompt:
            return text
        if "{input}" in a.prompt:
            return a.prompt.replace("{input}", text)
        return f"{a.prompt}\n\n{text}"

    @staticmethod
    def _account(res: AgentResult, profile: Profile, out: CallOutcome) -> None:
        res.profile = res.profile or profile.name
        res.model = out.model
        res.provider = out.provider
        res.input_tokens += out.input_tokens
        res.output_tokens += out.output_tokens
        res.add_cost(out.cost_usd)
        res.steps.extend({**s, "agent": res.name} for s in out.steps)

    @staticmethod
    def _check_output(a: Agent, out: Any) -> Any:
        if not a.wants_json:
            return out
        raw = render(out)
        if isinstance(out, str):
            try:
                out = parse_json_answer(out)
            except AgentError as e:
                raise AgentError(str(e), raw) from None
        if a.output_schema is not None:
            try:
                validator = Draft202012Validator(a.output_schema, registry=NO_REMOTE_REFS)
                errors = sorted(validator.iter_errors(out), key=lambda e: list(e.path))
            except Unresolvable as e:
                raise AgentError(f"output_schema cannot be checked: {e}", raw) from None
            if errors:
                where = "/".join(str(p) for p in errors[0].path) or "(root)"
                raise AgentError(f"output does not match its schema at {where}: {errors[0].message}", raw)
        return out
