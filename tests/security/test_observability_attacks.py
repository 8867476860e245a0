"""The observability surface attacked (session 21): by whoever answers at the OTLP receiver's address, and by a
client whose request content the span capture and the dashboard's recent requests keep. Real HTTP on loopback,
the official SDK as the client."""

from __future__ import annotations

import socket
import threading

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.observability.conftest import MSG


class HugeAnswer:
    """An OTLP "receiver" that answers every export 200 with a body of `size` bytes and counts how many of them the
    gateway let it send before closing the connection (a reader that reads it all takes every byte)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.done = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/traces"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n"
                         b"content-length: %d\r\n\r\n" % self.size)
            chunk = b"\0" * (256 * 1024)
            try:
                while self.sent < self.size:
                    conn.sendall(chunk)
                    self.sent += len(chunk)
            except OSError:  # the gateway closed the connection
                pass
        self.done.set()

    def close(self) -> None:
        self.sock.close()


def test_the_otlp_receivers_answer_is_read_bounded(two_tier, anthropic_up):
    """Whoever answers at the receiver's address answers an export with 64 MB: the exporter read it all into the
    gateway's memory (aiohttp `read()`, within `tracing.timeout`); it reads at most 64 KiB and closes."""
    size = 64 * 1024 * 1024
    rcv = HugeAnswer(size)
    try:
        g = two_tier(observability={"tracing": {"endpoint": rcv.url, "interval": 0.05, "timeout": 60}})
        anthropic_up.script(Reply(text="hi"))
        assert oai(g).chat.completions.create(model="main", messages=MSG).choices[0].message.content == "hi"
        g.gateway.observer.exporter.flush()
        assert rcv.done.wait(120)
        assert rcv.sent < size  # the gateway stopped reading: socket buffers hold a few MB at most
    finally:
        rcv.close()


def test_captured_content_kept_for_the_dashboard_is_bounded(two_tier, anthropic_up):
    """With `capture_content` and the dashboard on, each of the `recent` requests the dashboard keeps (2,000 by
    default) held its whole conversation as JSON (a span keeps 16 KiB of it): a client's 2 MB messages were
    2 MB each, up to `max_body_bytes` (32 MB) times 2,000. The record keeps what a span keeps, the same bytes."""
    import orjson

    from tests.observability.otlp_receiver import OTLPReceiver, attrs
    from tierwise.observability.span_encoder import MAX_CONTENT

    big = 'say "hi" \\ ünïcode ' * 100_000  # ~2 MB, with characters JSON escapes
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": big},
                {"role": "user", "content": "and then?"}]
    whole = orjson.dumps([{"role": "system", "parts": [{"type": "text", "content": "be brief"}]}]
                         + [{"role": "user", "parts": [{"type": "text", "content": m["content"]}]}
                            for m in messages[1:]]).decode()
    rcv = OTLPReceiver().start()
    try:
        g = two_tier(observability={"tracing": {"endpoint": rcv.url, "interval": 0.05, "capture_content": True},
                                    "dashboard": {"enabled": True}})
        anthropic_up.script(Reply(text="hi"))
        raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=messages)
        rid = raw.headers["x-tierwise-request-id"]
        g.flush()
        kept = g.gateway.observer.live.by_id[rid]
        assert len(kept.content) <= MAX_CONTENT
        assert rcv.wait_for(lambda: any(attrs(s.attributes).get("tierwise.request_id") == rid for s in rcv.spans))
        server, _ = rcv.by_request(rid)
        assert attrs(server.attributes)["gen_ai.input.messages"] == whole[:MAX_CONTENT]  # what spans always held
    finally:
        rcv.stop()


class Hung:
    """An OTLP "receiver" that takes connections and never answers; it counts them (one per POST: a connection
    that never answered is not reused)."""

    def __init__(self) -> None:
        self.conns: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/traces"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_hung_receiver_holds_the_shutdown_for_one_timeout(two_tier, anthropic_up):
    """A receiver that never answers, with six batches waiting: requests are answered (nothing waits on the
    export), and at shutdown the last export tried every waiting batch, a `timeout` each (here six POSTs; with
    the defaults up to nine times `timeout`, 45 s, or 9 min at `timeout: 60`). It now has one `timeout` in all:
    at most two POSTs are made (the one in flight and one more), and every request's spans are counted as dropped."""
    rcv = Hung()
    try:
        g = two_tier(observability={"tracing": {"endpoint": rcv.url, "interval": 0.05, "timeout": 2,
                                                "batch_size": 1}})
        anthropic_up.default = Reply(text="hi")
        for _ in range(6):
            assert oai(g).chat.completions.create(model="main", messages=MSG).choices[0].message.content == "hi"
        g._server.should_exit = True
        g._thread.join(120)
        assert not g._thread.is_alive()
        exp = g.gateway.observer.exporter
        assert len(rcv.conns) <= 2, len(rcv.conns)
        assert exp.dropped == 6 and exp.exported == 0
    finally:
        rcv.close()


def test_spans_waiting_for_a_hung_receiver_are_bounded_in_bytes(two_tier, anthropic_up):
    """With `capture_content`, a request's spans hold up to 16,384 characters of its messages, up to 4 bytes each:
    ~66 kB waiting per request while the receiver is down or slow, 272 MB at the default `queue_size` (4,096),
    which counted requests only (before session 32). Full batches are bounded by `queue_bytes` too: past it the
    newest batch is dropped and counted, and the batch being filled holds at most `batch_size` requests."""
    rcv = Hung()
    try:
        g = two_tier(observability={"tracing": {"endpoint": rcv.url, "capture_content": True, "timeout": 60,
                                                "interval": 60, "batch_size": 4, "queue_bytes": 262_144}})
        anthropic_up.default = Reply(text="hi")
        big = [{"role": "user", "content": "\U0001F600" * 20_000}]  # 80 kB of UTF-8 a request
        for _ in range(24):
            assert oai(g).chat.completions.create(model="main", messages=big).choices[0].message.content == "hi"
        exp = g.gateway.observer.exporter
        held = sum(len(e) for batch in exp.ready for e in batch[0]) + sum(len(e) for e in exp.pending)
        # At most the bound plus the batch being filled plus one batch taken by the POST in flight (4 requests).
        assert held <= 262_144 + 4 * 70_000, held
        assert exp.dropped >= 8, exp.dropped
        assert exp.waiting + exp.dropped + exp._in_flight == 24
    finally:
        rcv.close()


def test_the_batch_being_filled_and_the_post_in_flight_count_against_queue_bytes(two_tier, anthropic_up):
    """The bound left out the batch being filled and the POST in flight, each up to `batch_size` requests: at the
    default 512, ~34 MB apiece with captured content, on top of `queue_bytes` (before review32a). The batch being
    filled is sealed at an eighth of the bound, and the POST in flight counts against it."""
    rcv = Hung()
    try:
        g = two_tier(observability={"tracing": {"endpoint": rcv.url, "capture_content": True, "timeout": 60,
                                                "interval": 60, "batch_size": 512, "queue_bytes": 262_144}})
        anthropic_up.default = Reply(text="hi")
        big = [{"role": "user", "content": "\U0001F600" * 20_000}]  # 80 kB of UTF-8 a request (66 kB kept)
        for _ in range(40):
            assert oai(g).chat.completions.create(model="main", messages=big).choices[0].message.content == "hi"
        exp = g.gateway.observer.exporter
        held = (sum(len(e) for batch in exp.ready for e in batch[0]) + sum(len(e) for e in exp.pending)
                + getattr(exp, "_in_flight_bytes", 0))
        assert held <= 262_144 * 9 // 8 + 70_000, held
        assert exp.dropped >= 20, exp.dropped
        assert exp.waiting + exp.dropped + exp._in_flight == 40
    finally:
        rcv.close()
