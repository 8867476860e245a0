"""JSON verifiers: the answer parses as JSON; and it validates against a JSON Schema taken from
the verifier's config or, when none is configured, from the request's `response_format`.

Both the answer and (through `response_format`) the schema can come from an attacker, so the
checks run off the event loop with a time box (`offload`), and the schema keywords that match
regular expressions (`pattern`, `patternProperties`, `additionalProperties` next to them) use
the `regex` module with a timeout instead of jsonschema's backtracking `re` calls. A check is also
bounded in work: `$ref`s under `anyOf`/`oneOf` make a schema of a few lines whose check grows
exponentially in time and memory (every failed branch's errors are kept: 416 MB at 16 levels); each
keyword applied counts against `MAX_STEPS` and the check's deadline, and a check past either cannot run
(`detail["error"] = "too big"`), its thread freed (session 24, review24c).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema.exceptions
import regex
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable

from tierwise.canonical import Request, Response
from tierwise.verifiers.base import Verdict, VerifyContext
from tierwise.verifiers.json_formats import format_checker
from tierwise.verifiers.offload import CHECK_TIMEOUT_S, REGEX_TIMEOUT_S, off_loop
from tierwise.verifiers.text import json_candidate

# Compiling is not under the match timeout, and the `regex` module unrolls counted repeats: the 25 characters
# `(?:(?:x{1000}){1000}){10}` took 15 s and 2.9 GB to compile, a 1 MB literal 13 s and 250 MB. A pattern whose
# unrolled size (sequences add, counted repeats multiply) is past this does not compile here (the check cannot
# run, as for a broken pattern). An email or UUID pattern is a few hundred; compiling 5,000 takes ~0.25 s.
MAX_PATTERN_UNITS = 5_000
_QUANT = regex.compile(r"\{(\d*)(?:,(\d*))?\}")
# Verbose mode (an inline `x` flag) makes `#...` a comment and spaces nothing: a `(` or `)` the count sees is not the
# regex's. JSON Schema's patterns (ECMA-262) have no inline flags; such a pattern is not compiled.
_VERBOSE = regex.compile(r"\(\?[A-Za-z0-9-]*x")


def _units(pattern: str, limit: int = MAX_PATTERN_UNITS) -> int:
    """An upper estimate of `pattern`'s unrolled size; stops counting past `limit`. What it cannot follow (verbose
    mode, a group it saw open at the end) counts as past the limit: a `(` the count took from inside a comment or a
    POSIX class made `(?:(?:x{1000}(?#()){1000}...` read as 2,005 units (3 × 10^6 compiled in 5 s, review26b)."""
    if _VERBOSE.search(pattern):
        return limit + 1
    stack: list[int] = [0]  # the size of each open group so far
    last = 0  # the size of the last atom, which a quantifier multiplies
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i, last = i + 2, 1
        elif c == "[":  # a class is one atom: skip to its end (a `]` first in it, after any `^`, is a literal)
            j = i + 1 + (pattern[i + 1:i + 2] == "^")
            j += pattern[j:j + 1] == "]"
            while j < n and pattern[j] != "]":
                if pattern.startswith("[:", j):  # a POSIX class inside it ([:alpha:]): its `]` does not end it
                    k = pattern.find(":]", j + 2)
                    if k < 0:
                        return limit + 1
                    j = k + 2
                else:
                    j += 2 if pattern[j] == "\\" else 1
            i, last = j + 1, 1
        elif pattern.startswith("(?#", i):  # a comment, to its first unescaped `)`
            j = i + 3
            while j < n and pattern[j] != ")":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        elif c == "(":
            stack.append(0)
            i, last = i + 1, 0
            continue
        elif c == ")" and len(stack) > 1:
            last = stack.pop()
            stack[-1] += last
            i += 1
            continue
        elif c == "{" and (m := _QUANT.match(pattern, i)) and (m.group(1) or m.group(2)):
            times = int((m.group(2) or m.group(1) or "1")[:7])
            stack[-1] += last * (max(times, 1) - 1)
            last *= max(times, 1)
            i = m.end()
            if sum(stack) > limit:
                return sum(stack)
            continue
        else:
            i, last = i + 1, 0 if c in "|*+?" else 1
        stack[-1] += last if c not in "|*+?" else 0
        if stack[-1] > limit:
            return stack[-1]
    return sum(stack) if len(stack) == 1 else limit + 1


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    if _units(pattern) > MAX_PATTERN_UNITS:
        raise regex.error(f"a pattern that unrolls past {MAX_PATTERN_UNITS} units is not compiled")
    return regex.compile(pattern, regex.VERSION0)


def _search(pattern: str, text: str) -> bool:
    """Raises TimeoutError when the pattern takes too long, regex.error when it does not compile. Every match of
    one check shares one `REGEX_TIMEOUT_S`: a pattern that backtracks (`^(a|aa)+$`) just under the timeout on each
    of many strings would otherwise hold the check's thread for that many seconds."""
    left = getattr(_work, "regex_left", REGEX_TIMEOUT_S)
    if left <= 0:
        raise TimeoutError
    t0 = time.monotonic()
    try:
        return _compiled(pattern).search(text, timeout=left) is not None
    finally:
        _work.regex_left = left - (time.monotonic() - t0)


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(patrn, instance):
        yield ValidationError(f"{instance[:80]!r} does not match {patrn!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
                        ) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in patterns.items():
        for k, v in instance.items():
            if _search(patrn, k):
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _additional_properties(validator: Any, aP: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [k for k in instance if k not in props and not any(_search(p, k) for p in patterns)]
    if validator.is_type(aP, "object"):
        for k in extras:
            yield from validator.descend(instance[k], aP, path=k)
    elif not aP and extras:
        yield ValidationError(f"additional properties are not allowed ({', '.join(map(repr, extras[:5]))} "
                              f"{'was' if len(extras) == 1 else 'were'} unexpected)")


def _not_fetched(uri: str) -> Any:
    raise LookupError(f"{uri[:80]!r} is not fetched")


# A `$ref` outside the schema is never retrieved: jsonschema's default fetches it over HTTP (urllib, no timeout),
# so a client's schema made the gateway GET any URL from its own network position (an internal service, a cloud
# metadata address) and let the fetched document decide the verdict. Such a ref is Unresolvable: not checked.
NO_REMOTE_REFS: Registry[Any] = Registry(retrieve=_not_fetched)  # type: ignore[call-arg]

_TIMED = {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties}
MAX_STEPS = 50_000  # keywords applied in one check: a 10,000-item array of 4-field objects is ~50,000
_work = threading.local()  # this thread's check: steps left, deadline


class CheckTooBig(Exception):
    """A check past `MAX_STEPS` keywords or its deadline."""


def _counted(keyword: Any) -> Any:
    def counted(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        left = _work.left = getattr(_work, "left", MAX_STEPS) - 1
        if left < 0 or (not left & 255 and time.monotonic() > _work.deadline):
            raise CheckTooBig
        return keyword(validator, value, instance, schema)
    return counted


def parse_json_answer(text: str) -> tuple[Any, str | None]:
    """(value, None) or (None, why it does not parse)."""
    candidate = json_candidate(text)
    if not candidate:
        return None, "answer is empty"
    try:
        return json.loads(candidate), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"


class JsonVerifier:
    def __init__(self, name: str = "json") -> None:
        self.name = name

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        return await off_loop(self.check, resp.text(), name=self.name)

    def check(self, text: str) -> Verdict:
        _, error = parse_json_answer(text)
        if error:
            return Verdict(False, error, 0.0, self.name)
        return Verdict(True, "valid JSON", 1.0, self.name)


class JsonSchemaVerifier:
    def __init__(self, schema: dict[str, Any] | None = None, name: str = "json_schema") -> None:
        self.schema = schema
        self.name = name
        # The configured schema was checked at load time; build its validator once.
        self._validator = self._make_validator(schema) if schema is not None else None

    @staticmethod
    def _make_validator(schema: dict[str, Any]) -> Any:
        # (a `$schema` jsonschema does not know is read as the latest draft; without a stated default it warns that
        # a later release will raise there)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        timed = jsonschema.validators.extend(cls, {k: _counted(_TIMED.get(k, v)) for k, v in cls.VALIDATORS.items()})
        # Formats as the client's pydantic model parses them (verifiers/json_formats.py).
        return timed(schema, format_checker=format_checker(cls.FORMAT_CHECKER), registry=NO_REMOTE_REFS)

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        validator = self._validator
        if validator is None:
            rf = req.response_format
            if rf is None or rf.type != "json_schema" or not rf.schema:
                return Verdict(False, "no JSON Schema configured and the request's response_format has none",
                               None, self.name)
            try:
                validator = self._make_validator(rf.schema)
            except jsonschema.exceptions.SchemaError as e:
                return Verdict(False, f"the request's response_format schema is not valid JSON Schema: {e.message}",
                               None, self.name)
        return await off_loop(self.check, validator, resp.text(), name=self.name)

    def check(self, validator: Any, text: str) -> Verdict:
        value, error = parse_json_answer(text)
        if error:
            return Verdict(False, error, 0.0, self.name)
        return schema_violation(validator, value, self.name)


def schema_violation(validator: Any, value: Any, name: str = "json_schema") -> Verdict:
    """`value` (decoded JSON) against a validator made by `JsonSchemaVerifier._make_validator`; a failed verdict
    says where, and `detail["error"]` when the check itself could not run (a pattern timed out or is broken).
    Also the strict-tool check's (wire/strict_tools.py)."""
    _work.left, _work.deadline, _work.regex_left = MAX_STEPS, time.monotonic() + CHECK_TIMEOUT_S, REGEX_TIMEOUT_S
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    except CheckTooBig:
        return Verdict(False, "the schema check takes too much work on this answer", None, name, {"error": "too big"})
    except TimeoutError:
        return Verdict(False, "a schema pattern took too long on this answer", 0.0, name, {"error": "timeout"})
    except regex.error:
        return Verdict(False, "a schema pattern does not compile", None, name, {"error": "pattern"})
    except (RecursionError, jsonschema.exceptions.SchemaError, Unresolvable):  # a $ref that cannot be followed
        return Verdict(False, "the schema cannot be checked", None, name, {"error": "schema"})
    if errors:
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        where = "/" + "/".join(str(p) for p in best.absolute_path)
        return Verdict(False, f"schema violation at {where}: {best.message}"[:500], 0.0, name,
                       {"errors": len(errors), "where": where[:200], "keyword": str(best.validator)[:40]})
    return Verdict(True, "valid JSON matching the schema", 1.0, name)
