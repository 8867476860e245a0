"""CPU a request full of empty header fields costs `tierwise serve`, against a plain request (wire8).

Each request goes on a fresh connection: a plain chat request (OpenAI API, answered by the stub upstream), and
the same with `--fields` empty fields (`a:`) added (16,000 by default: 64 KB, just under max_header_bytes). Counted:
the serve process's user+system CPU (/proc/<pid>/stat) over `--requests` requests of each kind, per request.
With `--baseline-src` the same on a second tree.

    PYTHONPATH=src .venv/bin/python bench/header_count_cost.py --baseline-src /tmp/base31/src
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from gateway_overhead import resolve_src, start_stub, start_tierwise  # noqa: E402
from loadgen import request_for  # noqa: E402

from tests.harness import exchange  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(src: Path, label: str, n: int, extra: int) -> None:
    stub = start_stub(0.0)
    gw = start_tierwise(stub, Path(tempfile.mkdtemp(prefix="hdrcount-")), src)
    try:
        path, body, headers = request_for("openai", False, "m")
        head = b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: %d\r\n" % (
            path.encode(), len(body)) + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())
        kinds = {"plain": head + b"\r\n" + body, f"{extra} empty fields": head + b"a:\r\n" * extra + b"\r\n" + body,
                 # (review31e) the same fields in a request pipelined behind a plain GET, in the same read
                 "pipelined": b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\n"
                              b"host: 127.0.0.1\r\n" + b"a:\r\n" * extra + b"\r\n"}
        for data in kinds.values():  # warm
            for _ in range(5):
                exchange(gw.port, data, 30)
        print(f"## {label}")
        for name, data in kinds.items():
            before = cpu_s(gw.p.pid)
            statuses = {exchange(gw.port, data, 30)[:12] for _ in range(n)}
            per = (cpu_s(gw.p.pid) - before) / n * 1000
            print(f"{name:>20}: {per:6.2f} ms CPU per request; answers {sorted(s.decode() for s in statuses)}")
    finally:
        gw.stop()
        stub.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tierwise-src", default=str(HERE.parent / "src"))
    ap.add_argument("--baseline-src")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--fields", type=int, default=16_000)
    a = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="hdrcount-trees-"))
    for spec in [a.tierwise_src, *([a.baseline_src] if a.baseline_src else [])]:
        src, label = resolve_src(spec, scratch)
        measure(src, label, a.requests, a.fields)


if __name__ == "__main__":
    main()
