from __future__ import annotations

import pytest

from tierwise.errors import ConfigError
from tierwise.verifiers import VERIFIER_TYPES, VerifyContext, build_chain, build_verifier, parse_spec

from .helpers import req, resp


def test_every_type_builds() -> None:
    specs: dict[str, dict[str, object]] = {
        "json": {}, "json_schema": {"schema": {"type": "object"}}, "regex": {"pattern": "ok"},
        "contains": {"all": ["a"]}, "python_code": {"tests": "assert True"}, "arithmetic": {},
        "self_consistency": {"k": 2}, "logprobs": {"min_mean_logprob": -1}, "llm_judge": {"model": "big"},
        "callable": {"function": "tests.verifiers.custom_checks:has_ok"},
    }
    assert set(specs) == set(VERIFIER_TYPES)
    for kind, extra in specs.items():
        v = build_verifier({"type": kind, **extra})
        assert v.name == kind


@pytest.mark.parametrize("raw, fragment", [
    ({"type": "telepathy"}, "unknown verifier type 'telepathy'"),
    ({"type": "json_schema", "schema": {"type": "objekt"}}, "not a valid JSON Schema"),
    ({"type": "json_schema", "schema": {"properties": {"a": {"minimum": "zero"}}}}, "properties/a/minimum"),
    ({"type": "regex", "pattern": "(unclosed"}, "regex does not compile"),
    ({"type": "callable", "function": "no_such_module_xyz:f"}, "cannot import module 'no_such_module_xyz'"),
    ({"type": "callable", "function": "json:no_such_function"}, "has no attribute 'no_such_function'"),
    ({"type": "callable", "function": "json.loads"}, "must look like 'package.module:function'"),
    ({"type": "arithmetic", "threshold": 2}, "threshold"),
    ({"type": "json", "colour": "red"}, "colour"),
    ("not-a-type", "unknown verifier type"),
    (42, "must be a mapping"),
])
def test_bad_specs_fail_with_a_clear_message(raw: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(raw, where="routes.cheap.verifiers[0]")
    assert fragment in str(info.value)
    assert "routes.cheap.verifiers[0]" in str(info.value)


def test_chain_error_names_the_position() -> None:
    with pytest.raises(ConfigError, match=r"verifiers\[1\]"):
        build_chain([{"type": "json"}, {"type": "nope"}])
    with pytest.raises(ConfigError, match="must be a list"):
        build_chain({"type": "json"})  # type: ignore[arg-type]


async def test_chain_stops_at_the_first_failure() -> None:
    chain = build_chain(["json", {"type": "contains", "all": ["name"]}, {"type": "regex", "pattern": "never"}])
    ctx = VerifyContext()
    verdict = await chain(req(), resp('{"name": 1}'), ctx)
    assert not verdict.passed and verdict.reason.startswith("regex:")
    assert [v.name for v in verdict.detail["verdicts"]] == ["json", "contains", "regex"]
    early = await chain.run(req(), resp("not json"), ctx)
    assert [v.name for v in early] == ["json"] and not early[0].passed
    ok = await build_chain(["json", {"type": "contains", "all": ["name"]}])(req(), resp('{"name": 1}'), ctx)
    assert ok.passed and "json, contains" in ok.reason
