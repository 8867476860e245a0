"""JSON verifiers: the answer parses as JSON; and it validates against a JSON Schema taken from
the verifier's config or, when none is configured, from the request's `response_format`."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema.exceptions

from tierwise.canonical import Request, Response
from tierwise.verifiers.base import Verdict, VerifyContext
from tierwise.verifiers.text import json_candidate


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
        _, error = parse_json_answer(resp.text())
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
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema, format_checker=cls.FORMAT_CHECKER)

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
        value, error = parse_json_answer(resp.text())
        if error:
            return Verdict(False, error, 0.0, self.name)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            best = jsonschema.exceptions.best_match(errors) or errors[0]
            where = "/" + "/".join(str(p) for p in best.absolute_path)
            return Verdict(False, f"schema violation at {where}: {best.message}"[:500], 0.0, self.name,
                           {"errors": len(errors)})
        return Verdict(True, "valid JSON matching the schema", 1.0, self.name)
