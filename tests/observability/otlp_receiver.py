"""An OTLP/HTTP traces receiver on loopback (protobuf), for tests and the overhead benchmark."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        which = v.WhichOneof("value")
        if which == "array_value":
            out[kv.key] = [x.string_value for x in v.array_value.values]
        else:
            out[kv.key] = getattr(v, which) if which else None
    return out


class OTLPReceiver:
    def __init__(self, *, decode: bool = True) -> None:
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []
        self.posts = 0
        self.decode = decode
        self.content_types: list[str] = []
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                recv.content_types.append(self.headers.get("content-type", ""))
                if recv.decode:
                    req = ExportTraceServiceRequest.FromString(body)
                    for rs in req.resource_spans:
                        recv.resources.append(attrs(rs.resource.attributes))
                        for ss in rs.scope_spans:
                            recv.spans.extend(ss.spans)
                recv.posts += 1
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> OTLPReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def by_request(self, request_id: str) -> tuple[Any, list[Any]]:
        """The server span of a request and its client spans (children), in start order."""
        server = next(s for s in self.spans if attrs(s.attributes).get("tierwise.request_id") == request_id)
        children = sorted((s for s in self.spans if s.trace_id == server.trace_id and s.parent_span_id == server.span_id),
                          key=lambda s: s.start_time_unix_nano)
        return server, children
