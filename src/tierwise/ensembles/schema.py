"""Ensemble files and model profiles: their pydantic models and validation.

An ensemble is a YAML file naming agents that form a DAG. Every problem found is reported
with the file, the agent and what is wrong, all at once, so a user fixes a file in one go.
Validation here is structural (shape, cycles, dependencies, schemas, guards); whether the
models a profile names exist is checked against a config in `library.check_references`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from tierwise.config_keys import load_yaml, unknown_key_message, yaml_problem
from tierwise.ensembles.guard import GuardError, parse_guard
from tierwise.errors import ConfigError
from tierwise.privacy.ensemble_step import RedactStep

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # \Z: `$` would allow a final newline


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Profile(_Strict):
    """A named way to call a model: which model, in which tier, with which settings."""

    name: str = ""
    model: str = Field(description="a model or route name from tierwise.yaml")
    tier: Literal["local", "frontier"] = "local"
    system_prompt: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    timeout: float = Field(120.0, gt=0, description="seconds for one call")
    fallback: str | None = Field(None, description="profile to try when this one fails or times out")


# Ensemble and profile files may be an MCP client's (`create_ensemble`, `validate_ensemble`): what one may hold,
# its YAML aliases expanded (config_keys.load_yaml). A JSON Schema of an agent's output is the deepest part.
MAX_FILE_NODES = 100_000
MAX_FILE_DEPTH = 64

# The most `max_calls` an ensemble file may ask for: fan-outs multiply through nesting (1,000 items at each of 8
# levels), and a file may be an MCP client's.
MAX_CALLS_CAP = 100_000


class Agent(_Strict):
    """One node of the DAG: an LLM call (profile or model), a script, or a nested ensemble."""

    name: str
    profile: str | None = None
    model: str | None = None
    script: str | list[str] | None = Field(None, description="program (JSON on stdin, JSON on stdout)")
    ensemble: str | None = Field(None, description="a nested ensemble, by name or relative path")
    redact: RedactStep | bool | None = Field(None, description="built-in step: replace sensitive values with "
                                             "placeholders (tierwise.privacy.ensemble_step); true = pii and secrets")
    prompt: str | None = Field(None, description="instruction; `{input}` marks where the input goes")
    depends_on: list[str] = Field(default_factory=list)
    fan_out: str | None = Field(None, description="upstream agent whose array output this agent maps over")
    max_items: int = Field(32, ge=1, le=1000, description="largest array a fan-out maps over (the array is often "
                           "model output; each item is at least one call)")
    input_key: str | None = Field(None, description="dotted key picked out of the input")
    when: str | None = Field(None, description="guard: the agent runs only when this is true")
    timeout: float | None = Field(None, gt=0)
    fallback_profile: str | None = None
    output_schema: dict[str, Any] | None = None
    output: Literal["text", "json"] | None = Field(None, description="json: parse the answer (implied by a schema)")

    @model_validator(mode="after")
    def _one_kind(self) -> Agent:
        if self.redact is True:
            self.redact = RedactStep()
        kinds = [k for k in ("profile", "model", "script", "ensemble", "redact") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("needs exactly one of `profile`, `model`, `script`, `ensemble`, `redact`"
                             + (f" (has {', '.join(kinds)})" if kinds else ""))
        if self.fan_out and self.fan_out not in self.depends_on:
            self.depends_on.append(self.fan_out)
        return self

    @property
    def kind(self) -> Literal["llm", "script", "ensemble", "redact"]:
        if self.script:
            return "script"
        if self.redact:
            return "redact"
        if self.ensemble:
            return "ensemble"
        return "llm"

    @property
    def wants_json(self) -> bool:
        return self.output == "json" or self.output_schema is not None


class Ensemble(_Strict):
    name: str
    description: str = ""
    profiles: dict[str, Profile] = Field(default_factory=dict, description="profiles defined in this file")
    concurrency: dict[str, int] = Field(default_factory=dict, description="provider name -> max calls at once")
    max_calls: int = Field(2000, ge=1, le=MAX_CALLS_CAP, description="model calls, script runs and nested runs one "
                           "run may make in all, nested ensembles and fan-outs included (the top ensemble's counts)")
    agents: list[Agent] = Field(min_length=1)
    output: str | None = Field(None, description="the agent whose output is the answer (default: the last)")
    # Where the file was read from; relative script and ensemble paths resolve against it.
    path: str | None = Field(None, exclude=True)

    @property
    def final(self) -> str:
        return self.output or self.agents[-1].name

    def agent(self, name: str) -> Agent:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent if self.path else Path.cwd()


def _where(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`agents[2].timeout` becomes `agent 'classify': timeout` when the agent has a name."""
    if len(loc) >= 2 and loc[0] == "agents" and isinstance(loc[1], int):
        agents = data.get("agents") or []
        name = agents[loc[1]].get("name") if loc[1] < len(agents) and isinstance(agents[loc[1]], dict) else None
        rest = ".".join(str(p) for p in loc[2:])
        who = f"agent {name!r}" if name else f"agents[{loc[1]}]"
        return f"{who}: {rest}" if rest else who
    return ".".join(str(p) for p in loc) or "(root)"


def parse_ensemble(text: str, *, file: str | None = None) -> Ensemble:
    """Parse and validate an ensemble; raise one ConfigError listing every problem."""
    try:
        data = load_yaml(text, max_nodes=MAX_FILE_NODES, max_depth=MAX_FILE_DEPTH)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(e, text), file=file) from None
    if not isinstance(data, dict):
        raise ConfigError("an ensemble file must be a mapping with `name` and `agents`", file=file)
    if "name" not in data and file:
        data["name"] = Path(file).stem
    try:
        ens = Ensemble.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = (unknown_key_message(Ensemble, tuple(err["loc"])) if err["type"] == "extra_forbidden"
                   else err["msg"].removeprefix("Value error, "))
            problems.append(f"{_where(tuple(err['loc']), data)}: {msg}")
        raise ConfigError("invalid ensemble:\n  " + "\n  ".join(problems), file=file) from None
    ens.path = file
    problems = structural_problems(ens)
    if problems:
        raise ConfigError("invalid ensemble:\n  " + "\n  ".join(problems), file=file)
    return ens


def load_ensemble(path: str | Path) -> Ensemble:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("ensemble file not found", file=str(p)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=str(p)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start}): save it as UTF-8", file=str(p)) from None
    return parse_ensemble(text, file=str(p))


def structural_problems(ens: Ensemble) -> list[str]:
    """Names, dependencies, cycles, fan-out sources, guards, schemas and inline profiles."""
    problems: list[str] = []
    if not NAME.match(ens.name):
        problems.append(f"name {ens.name!r}: use letters, digits, '-', '_' and '.'")
    seen: set[str] = set()
    for a in ens.agents:
        if not NAME.match(a.name):
            problems.append(f"agent {a.name!r}: name may only hold letters, digits, '-', '_' and '.'")
        if a.name in seen:
            problems.append(f"agent {a.name!r}: defined twice")
        seen.add(a.name)
    for a in ens.agents:
        who = f"agent {a.name!r}"
        for d in a.depends_on:
            if d not in seen:
                problems.append(f"{who}: depends on unknown agent {d!r}")
            elif d == a.name:
                problems.append(f"{who}: depends on itself")
        if a.when:
            try:
                names = parse_guard(a.when)
            except GuardError as e:
                problems.append(f"{who}: when: {e}")
            else:
                unknown = names - set(a.depends_on) - {"input"}
                if unknown:
                    problems.append(f"{who}: when: refers to {', '.join(sorted(unknown))}, which it does not "
                                    "depend on (add to depends_on)")
        if a.output_schema is not None:
            try:
                Draft202012Validator.check_schema(a.output_schema)
            except SchemaError as e:
                problems.append(f"{who}: output_schema is not a valid JSON Schema: {e.message}")
            else:
                problems += [f"{who}: output_schema: $ref {r!r} points nowhere" for r in _dangling_refs(a.output_schema)]
        if isinstance(a.script, list) and not a.script:
            problems.append(f"{who}: script: an empty command")
    if ens.output and ens.output not in seen:
        problems.append(f"output: unknown agent {ens.output!r}")
    for pname, prof in ens.profiles.items():
        prof.name = prof.name or pname
        if prof.fallback and prof.fallback == pname:
            problems.append(f"profile {pname!r}: falls back to itself")
    for provider, n in ens.concurrency.items():
        if n < 1:
            problems.append(f"concurrency.{provider}: must be at least 1")
    cycle = find_cycle({a.name: [d for d in a.depends_on if d in seen] for a in ens.agents})
    if cycle:
        problems.append("agents depend on each other in a cycle: " + " -> ".join(cycle))
    return problems


def _dangling_refs(schema: dict[str, Any]) -> list[str]:
    """Local `$ref`s (`#/...`) that do not resolve; a run would otherwise fail at its first check."""
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    out: list[str] = []
    todo: list[Any] = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    out.append(ref)
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return out


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if state.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in graph:
        if state.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def parse_profile(text: str, *, file: str | None = None, name: str | None = None) -> Profile:
    try:
        data = load_yaml(text, max_nodes=MAX_FILE_NODES, max_depth=MAX_FILE_DEPTH)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(e, text), file=file) from None
    if not isinstance(data, dict):
        raise ConfigError("a profile file must be a mapping with at least `model`", file=file)
    try:
        prof = Profile.model_validate(data)
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: "
                    f"{unknown_key_message(Profile, tuple(err['loc'])) if err['type'] == 'extra_forbidden' else err['msg']}"
                    for err in e.errors()]
        raise ConfigError("invalid profile:\n  " + "\n  ".join(problems), file=file) from None
    prof.name = prof.name or name or (Path(file).stem if file else "")
    return prof
