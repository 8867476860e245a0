"""A gateway whose OTLP receiver never answers: does the request path slow down, and does memory stay bounded?

One `tierwise serve` (bench/gateway_overhead.py's gateway, with metrics, the dashboard and tracing at
sample_ratio 1) in front of the stub upstream, its `tracing.endpoint` pointing at a "receiver" of this script:

  accept   takes each connection and reads nothing, never answers (a wedged collector)
  backlog  listens and never accepts (a collector whose process is stopped)
  ok       reads each POST and answers 200 (the reference)
  off      no tracing endpoint (the reference without spans)

`--requests` OpenAI requests (`--concurrency` at a time, `--content` KB of message text each) are sent; the
gateway's VmRSS is read every `--every` requests, and the spans it dropped at the end (from /metrics).

    PYTHONPATH=src .venv/bin/python bench/otlp_blackhole_rss.py --receiver accept --requests 10000
    PYTHONPATH=src .venv/bin/python bench/otlp_blackhole_rss.py --receiver accept --requests 10000 --capture-content --content 16
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import rss_mb, serve_tierwise, start_stub  # noqa: E402


def receiver(mode: str) -> tuple[int, list[socket.socket]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8 if mode == "backlog" else 1024)
    held: list[socket.socket] = [srv]
    if mode == "accept":
        def take() -> None:
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                held.append(c)  # never read, never answered
        threading.Thread(target=take, daemon=True).start()
    elif mode == "ok":
        def serve() -> None:
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=answer, args=(c,), daemon=True).start()

        def answer(c: socket.socket) -> None:
            buf = b""
            with c:
                while True:
                    while b"\r\n\r\n" not in buf:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    n = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                    while len(buf) < n:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    buf = buf[n:]
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
        threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], held


async def load(port: int, n: int, conc: int, content_kb: int, every: int, pid: int) -> tuple[list[tuple[int, float]],
                                                                                           list[float]]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    text = ("lorem ipsum " * (content_kb * 1024 // 12 + 1))[: max(1, content_kb * 1024)]
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    done = 0
    marks: list[tuple[int, float]] = [(0, rss_mb(pid, "VmRSS"))]
    lat: list[float] = []
    it = iter(range(n))
    async with aiohttp.ClientSession() as s:
        async def worker() -> None:
            nonlocal done
            for _ in it:
                t = time.perf_counter()
                async with s.post(url, json=body) as r:
                    await r.read()
                    assert r.status == 200, r.status
                lat.append(time.perf_counter() - t)
                done += 1
                if done % every == 0:
                    marks.append((done, rss_mb(pid, "VmRSS")))
        await asyncio.gather(*(worker() for _ in range(conc)))
        async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
            m = await r.text()
    dropped = re.search(r"^tierwise_trace_spans_dropped_total (\S+)$", m, re.M)
    print(f"  spans dropped: {dropped.group(1) if dropped else 'n/a'}")
    return marks, lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--receiver", choices=("accept", "backlog", "ok", "off"), default="accept")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--content", type=int, default=1, help="KB of message text per request")
    ap.add_argument("--capture-content", action="store_true")
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=5.0, help="tracing.timeout")
    a = ap.parse_args()
    rport, held = receiver(a.receiver)
    stub = start_stub(0.0)
    work = Path(tempfile.mkdtemp(prefix="otlp-blackhole-"))
    tracing = "" if a.receiver == "off" else (
        f"  tracing: {{endpoint: 'http://127.0.0.1:{rport}/v1/traces', timeout: {a.timeout}, "
        f"capture_content: {str(a.capture_content).lower()}}}\n")
    gw = serve_tierwise(work, lambda port: f"""
server: {{port: {port}, default_route: main, max_body_bytes: 67108864}}
ledger: {{path: {work / "ledger.db"}}}
providers:
  stub: {{kind: openai, base_url: "http://127.0.0.1:{stub.port}/v1", locality: local}}
models:
  m: {{provider: stub, model: stub-model}}
routes:
  main: {{policy: rules, rules: [], default: m}}
observability:
  metrics: {{enabled: true}}
  dashboard: {{enabled: true}}
{tracing}""")
    try:
        print(f"receiver {a.receiver}, {a.requests} requests, concurrency {a.concurrency}, {a.content} KB each, "
              f"capture_content {a.capture_content}")
        marks, lat = asyncio.run(load(gw.port, a.requests, a.concurrency, a.content, a.every, gw.p.pid))
        for n, mb in marks:
            print(f"  after {n:>6} requests: VmRSS {mb:7.1f} MB")
        lat.sort()
        print(f"  latency p50 {lat[len(lat) // 2] * 1e3:.2f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms; "
              f"peak VmHWM {rss_mb(gw.p.pid):.1f} MB")
    finally:
        gw.stop()
        stub.stop()
        for s in held:
            s.close()


if __name__ == "__main__":
    main()
