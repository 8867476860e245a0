"""An OTLP receiver that refuses the gateway's exports (a wrong key: 401) is logged, so the operator learns their
traces are dropped; the log line carries the status and the receiver's words, never the credentials."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tierwise import secret_scrub
from tierwise.observability.settings import TracingConfig
from tierwise.observability.spans import SpanExporter

TOKEN = "tw-otlp-" + secrets.token_hex(20)


def _echo(key: str | None) -> bytes:
    return f"invalid api key {key}\nCRITICAL tierwise: all good".encode()


def _partial(key: str | None) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    r = ExportTraceServiceResponse()
    r.partial_success.rejected_spans = 7
    r.partial_success.error_message = f"attribute too long; key {key}\nCRITICAL tierwise: all good"
    return r.SerializeToString()


class Refusing:
    """Answers every POST with `status` and a body (by default one that echoes the key it was sent and tries to
    forge a log line)."""

    def __init__(self, status: int, answer=_echo) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", "0")))
                body = answer(self.headers.get("x-honeycomb-team"))
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exported_once(rcv: Refusing, way: str, caplog: Any, *, ok: bool) -> list[str]:
    """One export to `rcv` (aiohttp on a loop, or urllib without one) whose success is `ok`; the exporter's log."""
    secret_scrub.register([TOKEN])  # (the gateway registers `tracing.headers` values from its config)
    exporter = SpanExporter(TracingConfig(endpoint=rcv.url, headers={"x-honeycomb-team": TOKEN}), {})
    try:
        with caplog.at_level(logging.WARNING, logger="tierwise.observability"):
            if way == "urllib":
                assert exporter._post_sync(b"") is ok
            else:
                async def post() -> bool:
                    try:
                        return await exporter._post(b"")
                    finally:
                        await exporter._session.close()
                assert asyncio.run(post()) is ok
    finally:
        rcv.stop()
    return [r.getMessage() for r in caplog.records if r.name == "tierwise.observability"]


@pytest.mark.parametrize("status", [401, 413, 503])
@pytest.mark.parametrize("way", ["aiohttp", "urllib"])
def test_a_refused_export_is_logged_without_the_receivers_key(status: int, way: str, caplog: Any) -> None:
    lines = exported_once(Refusing(status), way, caplog, ok=False)
    assert any(f"HTTP {status}" in m and "invalid api key" in m for m in lines), lines
    assert not any(TOKEN in m or TOKEN[8:20] in m for m in lines)
    assert not any("\n" in m for m in lines)  # the receiver's line break cannot forge a log line


def test_a_receiver_refusing_every_batch_is_logged_once_a_minute(caplog: Any, monkeypatch: Any) -> None:
    from tierwise.observability import spans

    monkeypatch.setattr(spans, "REFUSAL_EVERY", 3600.0)  # (however slow the machine, the five are within it)
    rcv = Refusing(401)
    exporter = SpanExporter(TracingConfig(endpoint=rcv.url, headers={"x-honeycomb-team": TOKEN}), {})
    try:
        with caplog.at_level(logging.WARNING, logger="tierwise.observability"):
            for _ in range(5):
                assert exporter._post_sync(b"") is False
    finally:
        rcv.stop()
    assert sum("HTTP 401" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("way", ["aiohttp", "urllib"])
def test_a_partial_success_is_logged_with_the_receivers_reason(way: str, caplog: Any) -> None:
    """OTLP's partial success: a 200 whose answer says how many spans the receiver rejected, and why."""
    lines = exported_once(Refusing(200, _partial), way, caplog, ok=True)
    assert any("rejected 7 span(s)" in m and "attribute too long" in m for m in lines), lines
    assert not any(TOKEN in m or "\n" in m for m in lines)


def test_a_full_success_logs_nothing(caplog: Any) -> None:
    rcv = Refusing(200, lambda key: b"")
    exporter = SpanExporter(TracingConfig(endpoint=rcv.url), {})
    try:
        with caplog.at_level(logging.WARNING, logger="tierwise.observability"):
            assert exporter._post_sync(b"") is True
    finally:
        rcv.stop()
    assert not [r for r in caplog.records if r.name == "tierwise.observability"]
