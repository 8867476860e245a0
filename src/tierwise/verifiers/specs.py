"""Verifier configuration: one pydantic model per verifier type and the builders that turn them into verifiers.

`tierwise.yaml` lists verifiers as dicts with a `type` key; `parse_spec` validates one and
`build_chain` builds an ordered chain from a list. Everything that can be wrong with a
spec (unknown type, a regex that does not compile, a JSON Schema that is not valid JSON
Schema, a `module:function` that cannot be imported) is reported at load time as a
`ConfigError` naming the verifier's position and the problem, never at request time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from tierwise.errors import ConfigError
from tierwise.verifiers.base import Verifier, VerifierChain


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Shown in traces; defaults to the type.
    name: str | None = None


class JsonSpec(_Spec):
    """The answer (after stripping ```json fences) parses as JSON."""

    type: Literal["json"] = "json"


class JsonSchemaSpec(_Spec):
    """The answer parses as JSON and validates against `schema`, or the request's response_format schema."""

    type: Literal["json_schema"] = "json_schema"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            check_json_schema(v)
        return v


class RegexSpec(_Spec):
    """`pattern` must be found in the answer (or must not, with `must_match: false`)."""

    type: Literal["regex"] = "regex"
    pattern: str
    must_match: bool = True
    ignore_case: bool = False
    multiline: bool = False
    dotall: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            regex.compile(v, regex.VERSION0)  # what RegexVerifier runs it with
        except regex.error as e:
            raise ValueError(f"regex does not compile: {e}") from None
        return v


class ContainsSpec(_Spec):
    """Required (`all`), alternative (`any`) and forbidden (`none`) substrings."""

    type: Literal["contains"] = "contains"
    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    none: list[str] = Field(default_factory=list)
    ignore_case: bool = False


class PythonCodeSpec(_Spec):
    """Python code in the answer compiles and, when `tests` is given, passes them in the sandbox."""

    type: Literal["python_code"] = "python_code"
    tests: str | None = None
    # Run the extracted code even without tests (catches import-time errors); off by default.
    run: bool = False
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    cpu_s: int = Field(default=5, gt=0, le=600)
    memory_mb: int = Field(default=512, ge=64, le=65536)
    # Let the code start threads (off: a run is one task; see docs/security/sandbox.md).
    threads: bool = False
    # split: tests in a checker process that never runs the answer (default); shared: tests and
    # answer in one process, which an answer can forge (docs/security/sandbox.md).
    isolation: Literal["split", "shared"] = "split"


class ArithmeticSpec(_Spec):
    """Equations written in the answer (`a op b = c`, GSM8K `<<a*b=c>>`) are checked with a calculator."""

    type: Literal["arithmetic"] = "arithmetic"
    # Fraction of equations that must be right to pass.
    threshold: float = Field(default=1.0, ge=0, le=1)
    # Answers with fewer equations than this fail (0: an answer without equations passes).
    min_equations: int = Field(default=0, ge=0)
    # Relative tolerance; answers often round (e.g. 33.33 for 100/3).
    rel_tol: float = Field(default=0.01, ge=0)
    # The answer must end with a final number (e.g. "#### 42" or "The answer is 42").
    require_final_answer: bool = False
    # The final answer must be a whole number (counting problems such as GSM8K).
    expect_integer: bool = False


class SelfConsistencySpec(_Spec):
    """k extra samples; pass when the share agreeing with the answer reaches `threshold`."""

    type: Literal["self_consistency"] = "self_consistency"
    k: int = Field(default=3, ge=1, le=32)
    threshold: float = Field(default=0.6, ge=0, le=1)
    # exact: normalised text; number: the final number (math); embedding: cosine ≥ similarity.
    mode: Literal["exact", "number", "embedding"] = "exact"
    similarity: float = Field(default=0.85, ge=-1, le=1)


class LogprobsSpec(_Spec):
    """Thresholds on the answer's token logprobs (needs an upstream that returns them)."""

    type: Literal["logprobs"] = "logprobs"
    min_mean_logprob: float | None = None
    max_mean_entropy: float | None = Field(default=None, ge=0)
    min_token_logprob: float | None = None
    # Without logprobs the answer cannot be checked: fail (escalate) unless told otherwise.
    on_missing: Literal["pass", "fail"] = "fail"


Grade = Literal["good", "acceptable", "poor"]


class LlmJudgeSpec(_Spec):
    """A named model grades the answer good / acceptable / poor, reasoning first."""

    type: Literal["llm_judge"] = "llm_judge"
    model: str
    pass_grades: list[Grade] = Field(default_factory=lambda: list[Grade](["good", "acceptable"]))
    rubric: str | None = None
    max_tokens: int = Field(default=512, ge=16)


class CallableSpec(_Spec):
    """Any Python callable `module:function(req, resp, ctx, **options)`; sync or async.

    It returns a Verdict, a bool, or a `(passed, reason)` pair.
    """

    type: Literal["callable"] = "callable"
    function: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("function")
    @classmethod
    def _importable(cls, v: str) -> str:
        import_callable(v)
        return v


VerifierSpec = Annotated[
    JsonSpec | JsonSchemaSpec | RegexSpec | ContainsSpec | PythonCodeSpec | ArithmeticSpec
    | SelfConsistencySpec | LogprobsSpec | LlmJudgeSpec | CallableSpec,
    Field(discriminator="type"),
]
VERIFIER_TYPES = ("json", "json_schema", "regex", "contains", "python_code", "arithmetic",
                  "self_consistency", "logprobs", "llm_judge", "callable")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(VerifierSpec)


def check_json_schema(schema: dict[str, Any]) -> None:
    """Raise ValueError naming the problem when `schema` is not a valid JSON Schema."""
    import jsonschema  # loaded only when a config uses a json_schema check (it is large)
    import jsonschema.exceptions

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise ValueError(f"not a valid JSON Schema at {where}: {e.message}") from None


def import_callable(ref: str) -> Callable[..., Any]:
    """Import `module:function` (dotted attribute paths allowed after the colon)."""
    mod_name, sep, attr = ref.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"callable {ref!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(mod_name)
    except Exception as e:  # ImportError, or the module itself failed while importing
        raise ValueError(f"cannot import module {mod_name!r} for callable {ref!r}: {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {mod_name!r} has no attribute {attr!r} (callable {ref!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def parse_spec(raw: Any, where: str = "verifier") -> Any:
    """Validate one verifier spec (a dict or an already-built spec model); ConfigError on anything wrong."""
    if isinstance(raw, _Spec):
        return raw
    if isinstance(raw, str):  # shorthand: `- json` means `{type: json}`
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"a verifier must be a mapping with a 'type', got {type(raw).__name__}", path=where)
    kind = raw.get("type")
    if kind not in VERIFIER_TYPES:
        raise ConfigError(f"unknown verifier type {kind!r} (known: {', '.join(VERIFIER_TYPES)})", path=where)
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as e:
        problems = "; ".join(_format_error(err) for err in e.errors())
        raise ConfigError(f"bad {kind} verifier: {problems}", path=where) from None


def _format_error(err: Any) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())[1:])  # drop the union tag
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def build_verifier(spec: Any, services: Any = None, where: str = "verifier") -> Verifier:
    """Build the verifier a spec (model or dict) describes."""
    spec = parse_spec(spec, where)
    name = spec.name or spec.type
    # Imported here so that loading config does not import every verifier's dependencies.
    if isinstance(spec, JsonSpec):
        from tierwise.verifiers.json_check import JsonVerifier

        return JsonVerifier(name=name)
    if isinstance(spec, JsonSchemaSpec):
        from tierwise.verifiers.json_check import JsonSchemaVerifier

        return JsonSchemaVerifier(schema=spec.schema_, name=name)
    if isinstance(spec, RegexSpec):
        from tierwise.verifiers.patterns import RegexVerifier

        return RegexVerifier(spec.pattern, must_match=spec.must_match, ignore_case=spec.ignore_case,
                             multiline=spec.multiline, dotall=spec.dotall, name=name)
    if isinstance(spec, ContainsSpec):
        from tierwise.verifiers.patterns import ContainsVerifier

        return ContainsVerifier(all_of=spec.all, any_of=spec.any, none_of=spec.none,
                                ignore_case=spec.ignore_case, name=name)
    if isinstance(spec, PythonCodeSpec):
        from tierwise.sandbox import SandboxLimits
        from tierwise.verifiers.code import PythonCodeVerifier

        limits = SandboxLimits(wall_s=spec.timeout_s, cpu_s=spec.cpu_s, memory_mb=spec.memory_mb,
                               threads=spec.threads)
        return PythonCodeVerifier(tests=spec.tests, run=spec.run, limits=limits, name=name,
                                  isolation=spec.isolation)
    if isinstance(spec, ArithmeticSpec):
        from tierwise.verifiers.arithmetic import ArithmeticVerifier

        return ArithmeticVerifier(threshold=spec.threshold, min_equations=spec.min_equations,
                                  rel_tol=spec.rel_tol, require_final_answer=spec.require_final_answer,
                                  expect_integer=spec.expect_integer, name=name)
    if isinstance(spec, SelfConsistencySpec):
        from tierwise.verifiers.consistency import SelfConsistencyVerifier

        return SelfConsistencyVerifier(k=spec.k, threshold=spec.threshold, mode=spec.mode,
                                       similarity=spec.similarity, name=name)
    if isinstance(spec, LogprobsSpec):
        from tierwise.verifiers.logprobs import LogprobsVerifier

        return LogprobsVerifier(min_mean_logprob=spec.min_mean_logprob, max_mean_entropy=spec.max_mean_entropy,
                                min_token_logprob=spec.min_token_logprob, on_missing=spec.on_missing, name=name)
    if isinstance(spec, LlmJudgeSpec):
        from tierwise.verifiers.judge import LlmJudgeVerifier

        return LlmJudgeVerifier(model=spec.model, pass_grades=tuple(spec.pass_grades), rubric=spec.rubric,
                                max_tokens=spec.max_tokens, name=name)
    if isinstance(spec, CallableSpec):
        from tierwise.verifiers.custom import CallableVerifier

        return CallableVerifier(import_callable(spec.function), options=spec.options, name=name)
    raise ConfigError(f"unsupported verifier spec {type(spec).__name__}", path=where)  # pragma: no cover


def build_chain(specs: Sequence[Any], services: Any = None, name: str = "verifiers",
                where: str = "verifiers") -> VerifierChain:
    """Build verifiers in order into a chain that stops at the first failure."""
    if isinstance(specs, (str, dict)):
        raise ConfigError("verifiers must be a list", path=where)
    built = [build_verifier(s, services, where=f"{where}[{i}]") for i, s in enumerate(specs)]
    return VerifierChain(built, name=name)
