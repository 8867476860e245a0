"""A client's structured-output schema is hostile input (wire/strict_output.py, verifiers/json_check.py): checking a
local model's answer against it must not make the gateway fetch URLs, nor take unbounded work. Real HTTP on
loopback, the official openai SDK as the client, `local` the OpenAI-format double."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP server that records every path asked of it (what an internal service would see)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.path)
            body = b'{"type": "string"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def _schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "Thing", "strict": True, "schema": schema}}


@pytest.mark.parametrize("where", ["property", "root", "$defs"])
def test_a_schemas_remote_ref_is_never_fetched_by_the_gateway(two_tier, openai_up, listener, where):
    """jsonschema retrieves a `$ref` it cannot resolve over HTTP (urllib, no timeout): a client's schema made the
    gateway GET any URL from its own network position (an internal service, a cloud metadata address), and the
    fetched document decided the verdict."""
    url, seen = listener
    ref = {"$ref": url + "/internal/secret.json"}
    schema = {"property": {"type": "object", "properties": {"a": ref}, "required": ["a"],
                           "additionalProperties": False},
              "root": ref,
              "$defs": {"$defs": {"A": ref}, "type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}}[where]
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Reply(text='{"a": "x"}'))
    done = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}],
                                          response_format=_schema_format(schema))  # type: ignore[arg-type]
    assert done.choices[0].message.content == '{"a": "x"}'  # checked as far as it can be: JSON, an object
    assert seen == []


def test_a_schema_past_the_container_bound_is_not_checked_at_all():
    """The schema's own check ran outside the check's step bound and deadline, ~0.5 ms per object in the schema:
    a 2 MB schema of 20,000 properties held a verifier thread for 21 s, on every request (past the validator
    cache's size). Past `MAX_SCHEMA_CONTAINERS` a schema is left unchecked (the JSON check only), as one whose check
    cannot finish; one just within the bound is checked as before."""
    from tierwise.wire.strict_tools import MAX_SCHEMA_CONTAINERS, _check

    def schema(props: int) -> dict[str, Any]:
        return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(props)}}

    assert _check(schema(MAX_SCHEMA_CONTAINERS + 1), {"p1": 5}).detail == {"error": "too big"}
    assert _check(schema(50), {"p1": 5}).detail["where"] == "/p1"


def test_a_pathological_pattern_costs_one_budget_per_check_not_one_per_string():
    """`pattern` runs under the `regex` module's timeout (1 s a match), but a check's deadline was only looked at
    every 256 keywords: an answer of 100 strings that each take `^(a|aa)+$` just under the timeout held a verifier
    thread for minutes. Every match of one check now shares one budget; past it the check cannot run."""
    from tierwise.wire.strict_tools import _check

    schema = {"type": "array", "items": {"type": "string", "pattern": "^(a|aa)+$"}}
    assert _check(schema, ["a" * 28 + "!"] * 100).detail == {"error": "timeout"}
    assert _check(schema, ["aaaa", "b"]).detail["where"] == "/1"  # an ordinary pattern still judged


def test_a_pattern_that_unrolls_past_the_bound_is_never_compiled():
    """The `regex` module unrolls counted repeats when it compiles, outside any timeout: the 25 characters
    `(?:(?:x{1000}){1000}){10}` in a client's schema took 15 s and 2.9 GB of the gateway's memory to compile. A
    pattern past `MAX_PATTERN_UNITS` is now refused before compiling (the check cannot run, as for a broken one);
    a UUID pattern is still judged."""
    from tierwise.wire.strict_tools import _check

    bomb = {"type": "string", "pattern": "^(?:x{1000}){30}$"}  # 30,000 units: small enough to compile before
    assert _check(bomb, "x").detail == {"error": "pattern"}
    uuid = {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
    assert _check(uuid, "not-a-uuid").detail["keyword"] == "pattern"
    assert _check(uuid, "123e4567-e89b-12d3-a456-426614174000").passed



@pytest.mark.parametrize("hide", ["(?#()", "[[:alpha:](]", "[^](]", "(?x)#(\n"])
@pytest.mark.filterwarnings("ignore:Possible nested set")  # the schema's own check reads it with Python's re
def test_a_pattern_that_hides_its_groups_from_the_count_is_never_compiled(hide):
    """review26b: the count took a `(` from inside a comment, a POSIX class, a `[^]...]` class or a verbose-mode
    comment for a group, so the real group's repeat multiplied one character: `(?:(?:x{1000}(?#()){1000}(?#()){3}`
    read as 2,005 units and compiled 3 × 10^6 (5 s, most of a GB). Here 300,000: refused before compiling."""
    from tierwise.wire.strict_tools import _check

    pattern = {"(?x)#(\n": "(?x)(?:(?:x{1000}#(\n){100}#(\n){3}",
               # closed by a `)` in a class as well: Python's re (the schema's own check) reads it balanced
               "[[:alpha:](]": "(?:(?:x{1000}[[:alpha:](]){100}[[:alpha:])]){3}"}.get(
        hide, f"(?:(?:x{{1000}}{hide}){{100}}{hide}){{3}}")
    assert _check({"type": "string", "pattern": pattern}, "x").detail == {"error": "pattern"}
    posix = {"type": "string", "pattern": "^[[:alpha:]]{3}(?#three letters)$"}  # still judged
    assert _check(posix, "abc").passed and _check(posix, "ab1").detail["keyword"] == "pattern"


ODD_SCHEMAS = {  # what a client may send as a strict schema: never a 500, never a stack trace
    "unknown type": {"type": "strin"},
    "required not a list": {"type": "object", "required": "a"},
    "remote $schema": {"$schema": "http://127.0.0.1:9/evil", "type": "object"},
    "unknown keyword": {"type": "object", "x-vendor": {"deep": [1, 2]}},
    "if/then/else": {"if": {"required": ["a"]}, "then": {"properties": {"a": {"type": "integer"}}}},
    "dynamic ref": {"$dynamicAnchor": "n", "type": "object", "properties": {"a": {"$dynamicRef": "#n"}}},
    "broken pattern": {"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}},
    "pattern with a lookbehind": {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)y"}}},
    "format unknown": {"type": "object", "properties": {"a": {"type": "string", "format": "x-made-up"}}},
    "format regex": {"type": "object", "properties": {"a": {"type": "string", "format": "regex"}}},
    "ref loop": {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    "boolean schema": True,
}


@pytest.mark.parametrize("case", sorted(ODD_SCHEMAS))
def test_an_odd_schema_is_answered_never_a_500(two_tier, openai_up, case):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Reply(text='{"a": "(x"}'))
    import openai

    try:
        done = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}],
                                              response_format=_schema_format(ODD_SCHEMAS[case]))  # type: ignore[arg-type]
        assert done.choices[0].message.content == '{"a": "(x"}'
    except openai.APIStatusError as e:  # refused or judged: in the API's schema, named, not a crash
        assert e.status_code in (400, 502), (e.status_code, e.message)
        assert "Traceback" not in e.message and "internal error" not in e.message
