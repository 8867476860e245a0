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
