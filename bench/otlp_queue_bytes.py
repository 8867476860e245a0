"""Spans waiting for an OTLP receiver that takes connections and never answers (session 32, obs4): bytes held.

One in-process gateway with `tracing.capture_content: true` (defaults otherwise: `queue_size` 4096, `batch_size`
512, `timeout` raised to 60 s so the one POST in flight stays in flight), a local upstream double; `--requests`
requests one at a time, each with one user message of 20,000 emoji (80 kB of UTF-8: a span keeps 16,384
characters of it). Then the exporter's queue: requests waiting, dropped, and the bytes of the full batches, of the
batch being filled and of the batch in flight (review32a: estimated for a tree that does not count them).

    PYTHONPATH=src .venv/bin/python bench/otlp_queue_bytes.py [--src OTHER/src] [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--requests", type=int, default=2000)
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    sys.path.insert(1, str(ROOT))
    import httpx2 as httpx

    from tests.doubles import OpenAIDouble, Reply
    from tests.harness import GatewayServer, make_config, two_tier_config

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    conns: list[socket.socket] = []
    threading.Thread(target=lambda: [conns.append(hole.accept()[0]) for _ in iter(int, 1)], daemon=True).start()
    up = OpenAIDouble()
    up.start()
    up.default = Reply(text="ok")
    cfg = two_tier_config(up.url, up.url, local_kind="openai", remote_kind="openai", routes={"main": ["local"]})
    cfg["ledger"] = {"enabled": False}
    cfg["observability"] = {"tracing": {"endpoint": f"http://127.0.0.1:{hole.getsockname()[1]}/v1/traces",
                                        "capture_content": True, "timeout": 60}}
    g = GatewayServer(make_config(cfg, Path(tempfile.mkdtemp()))).start()
    body = {"model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": "\U0001F600" * 20_000}]}
    with httpx.Client(timeout=60) as c:
        for _ in range(a.requests):
            c.post(g.url + "/v1/chat/completions", json=body)
            up.requests.clear()  # (the double's own log of bodies is not the gateway's memory)
    exp = g.gateway.observer.exporter
    ready = sum(len(e) for batch in exp.ready for e in batch[0])
    pending = sum(len(e) for e in exp.pending)
    per = (ready + pending) / max(1, exp.waiting)
    # (review32a: the POST's bytes; a tree before it did not count them: its requests times the mean request)
    flight = getattr(exp, "_in_flight_bytes", exp._in_flight * per)
    print(f"tree {a.src}: {a.requests} requests; waiting {exp.waiting} ({len(exp.ready)} full batches), in flight "
          f"{exp._in_flight}, dropped {exp.dropped}; full batches {ready / 1e6:.1f} MB + filling {pending / 1e6:.1f} MB "
          f"= {(ready + pending) / 1e6:.1f} MB held ({per / 1e3:.1f} kB a request), + in flight {flight / 1e6:.1f} MB "
          f"= {(ready + pending + flight) / 1e6:.1f} MB")
    os._exit(0)


if __name__ == "__main__":
    main()
