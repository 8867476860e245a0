"""Review of the strict-tool check (session 24, review24c): valid calls against the schemas real clients send
(pydantic models through `openai.pydantic_function_tool`, `$defs`/`$ref`, `anyOf` with null, enums,
`additionalProperties: false`, recursion) stay with the upstream that wrote them; a non-strict tool is never
judged; and a client's schema cannot make the check unbounded. Real HTTP, the official openai SDK, the
doubles and helpers of tests/security/test_hostile_model_output.py."""

from __future__ import annotations

import enum
import json
from typing import Literal, Optional

import openai
import pydantic
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai
from tests.security.test_hostile_model_output import _strict_route, tool_stream


class Color(enum.StrEnum):
    red = "red"
    blue = "blue"


class Node(pydantic.BaseModel):
    name: str
    children: list[Node]


class Step(pydantic.BaseModel):
    cmd: str
    timeout_s: Optional[int]  # noqa: UP045 - the SDK's nullable field as users write it
    shell: Literal["bash", "sh"]


class Plan(pydantic.BaseModel):
    title: str
    color: Color
    steps: list[Step]
    tree: Node
    count: int
    ratio: float
    tags: Optional[list[str]]  # noqa: UP045


PLAN_ARGS = {"title": "fix é ✓", "color": "blue", "count": 123456789012345678901234567890, "ratio": 1,
             "steps": [{"cmd": "pytest -q", "timeout_s": None, "shell": "bash"},
                       {"cmd": "ls", "timeout_s": 30, "shell": "sh"}],
             "tree": {"name": "a", "children": [{"name": "b", "children": []}]}, "tags": None}


def _answer(name: str, arguments: str, stream: bool) -> Raw:
    if stream:
        return Raw(body=tool_stream(*[arguments[i:i + 7] for i in range(0, len(arguments), 7)]).replace(
            '"edit"', json.dumps(name)), content_type="text/event-stream")
    return Raw(body=json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}]}}]}))


def _call(g, tools, stream: bool):
    kw = {"model": "main", "messages": [{"role": "user", "content": "plan it"}], "tools": tools}
    if stream:
        with oai(g).chat.completions.stream(**kw) as s:
            for _ in s:
                pass
            return s.get_final_completion().choices[0].message.tool_calls[0]
    return oai(g).chat.completions.parse(**kw).choices[0].message.tool_calls[0]


@pytest.mark.parametrize("stream", [False, True])
def test_a_valid_call_of_a_rich_pydantic_tool_stays_with_its_upstream(two_tier, openai_up, anthropic_up, stream):
    g = _strict_route(two_tier, openai_up, anthropic_up, _answer("Plan", json.dumps(PLAN_ARGS), stream))
    call = _call(g, [openai.pydantic_function_tool(Plan)], stream)
    assert call.function.parsed_arguments.steps[1].timeout_s == 30
    assert not anthropic_up.requests  # not refused: the frontier was never asked


HAND_WRITTEN = {  # strict schemas written by hand (zod-to-json-schema's `definitions`, a recursive `$ref: "#"`)
    "definitions": ({"type": "object", "additionalProperties": False, "required": ["a"],
                     "properties": {"a": {"$ref": "#/definitions/A"}},
                     "definitions": {"A": {"type": ["string", "null"], "enum": ["x", "y", None]}}}, {"a": None}),
    "recursive root": ({"type": "object", "additionalProperties": False, "required": ["v", "next"],
                        "properties": {"v": {"type": "number"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}},
                       {"v": 1, "next": {"v": 2.5, "next": None}}),
    "a remote $ref": ({"type": "object", "properties": {"a": {"$ref": "https://example.invalid/a.json"}}}, {"a": 1}),
    "a JavaScript-only pattern": ({"type": "object", "properties": {"a": {"type": "string", "pattern": "^[^]*$"}}},
                                  {"a": "x"}),
}


@pytest.mark.parametrize("case", sorted(HAND_WRITTEN))
def test_a_valid_call_of_a_hand_written_strict_schema_stays(two_tier, openai_up, anthropic_up, case):
    schema, args = HAND_WRITTEN[case]
    g = _strict_route(two_tier, openai_up, anthropic_up, _answer("T", json.dumps(args), False))
    tool = {"type": "function", "function": {"name": "T", "strict": True, "parameters": schema}}
    call = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "go"}],
                                          tools=[tool]).choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == args
    assert not anthropic_up.requests


@pytest.mark.parametrize("stream", [False, True])
def test_a_non_strict_tools_arguments_are_not_judged(two_tier, openai_up, anthropic_up, stream):
    tool = {"type": "function", "function": {"name": "T", "parameters": {
        "type": "object", "additionalProperties": False, "properties": {"a": {"type": "integer"}}}}}
    g = _strict_route(two_tier, openai_up, anthropic_up, _answer("T", '{"a": "not an int", "b": 1}', stream))
    kw = {"model": "main", "messages": [{"role": "user", "content": "go"}], "tools": [tool]}
    if stream:
        chunks = list(oai(g).chat.completions.create(stream=True, **kw))
        args = "".join(tc.function.arguments or "" for c in chunks for tc in (c.choices[0].delta.tool_calls or []))
    else:
        args = oai(g).chat.completions.create(**kw).choices[0].message.tool_calls[0].function.arguments
    assert json.loads(args) == {"a": "not an int", "b": 1}
    assert not anthropic_up.requests


def _exponential(depth: int) -> dict:
    """A few lines of schema whose check doubles with each level: `anyOf` of two `$ref`s to the level below."""
    defs = {"d0": {"type": "string"}}
    for i in range(1, depth + 1):
        defs[f"d{i}"] = {"anyOf": [{"$ref": f"#/$defs/d{i - 1}"}, {"$ref": f"#/$defs/d{i - 1}"}]}
    return {"type": "object", "properties": {"x": {"$ref": f"#/$defs/d{depth}"}}, "$defs": defs}


def test_a_schema_whose_check_explodes_is_bounded():
    """Checked as written, 40 levels were 2^40 keyword applications, each failed branch's errors kept (16 levels
    took 416 MB): a thread that never ends and a process that runs out of memory, from a 3 KB schema in a
    client's request. Now the check stops at its bound and cannot run (the object check is all there is)."""
    from tierwise.verifiers.json_check import JsonSchemaVerifier, schema_violation

    verdict = schema_violation(JsonSchemaVerifier._make_validator(_exponential(40)), {"x": 1})
    assert verdict.detail == {"error": "too big"}


def test_a_strict_tool_with_an_exploding_schema_is_answered(two_tier, openai_up, anthropic_up):
    """Through the gateway: the call the check cannot judge stays with the upstream that wrote it (not refused)."""
    tool = {"type": "function", "function": {"name": "T", "strict": True, "parameters": _exponential(40)}}
    g = _strict_route(two_tier, openai_up, anthropic_up, _answer("T", '{"x": 1}', False))
    call = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "go"}],
                                          tools=[tool]).choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"x": 1}
    assert not anthropic_up.requests
