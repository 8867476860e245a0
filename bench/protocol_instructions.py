"""Instructions per request of the HTTP protocol layer alone (uvicorn's httptools protocol as the gateway guards it:
server/limits.py, header_bytes.py, header_count.py, cork.py), under valgrind's callgrind: a count the machine's load
does not move, for changes too small for bench/gateway_overhead.py's CPU time to see (session 34, perf34: its CPU per
request moved ±30% round to round on a shared machine; this count repeats to a few instructions).

Per tree: one process sends `--warm` keep-alive requests (a typical SDK POST: 8 header lines, a small JSON body)
through one protocol instance on a fake transport to a trivial ASGI app, another `--warm` + `--requests`; the
difference divided by `--requests` is the layer's cost per request (parser, callbacks, uvicorn's request cycle and
task, the answer), with start-up and first-request work (imports, caches) in both and so out of it. The
cyclic collector is off while requests run (a collection falls in one run and not in the other), and string hashes
are fixed (PYTHONHASHSEED=0: dict probes moved a tree's figure by ~2,500 between runs).

    .venv/bin/python bench/protocol_instructions.py src /tmp/base/src     # trees: a checkout's src/ each
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BODY = b'{"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":16}'
REQUEST = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:8000\r\naccept-encoding: gzip, deflate\r\n"
           b"accept: application/json\r\nconnection: keep-alive\r\nuser-agent: python-requests/2.31\r\n"
           b"content-type: application/json\r\nauthorization: Bearer sk-xxxxxxxxxxxxxxxx\r\n"
           b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def get_extra_info(self, k: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5), "sockname": ("127.0.0.1", 80)}.get(k, default)

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, lines: object) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, *a: object, **k: object) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _app(scope: dict, receive, send) -> None:  # noqa: ANN001
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok":1}'})


async def _serve(n: int) -> None:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from tierwise.server.limits import guarded_protocol
    from tierwise.server.limits_settings import ServerLimits

    cfg = Config(_app, http="httptools", lifespan="off", log_level="warning")
    cfg.load()
    proto = guarded_protocol(ServerLimits(), 5.0)(config=cfg, server_state=ServerState(), app_state={})
    proto.connection_made(_Transport())  # type: ignore[arg-type]
    gc.disable()  # (a collection in one run and not in the other moved the figure by ~200,000 per request)
    for _ in range(n):
        proto.data_received(REQUEST)
        for _ in range(4):  # (the request's task runs and answers)
            await asyncio.sleep(0)


def _count(src: Path, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                              "--serve", str(n)], env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                             capture_output=True, text=True, check=True)
        return int(re.search(r"Collected : (\d+)", run.stderr)[1])  # type: ignore[index]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="*", help="src/ folders (the first is A; each other is compared with it)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--serve", type=int, default=-1, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve >= 0:
        asyncio.run(_serve(a.serve))
        return
    per = {}
    for t in a.trees:
        src = Path(t).resolve()
        warm = _count(src, a.warm)  # (first: a tree's first run also compiles its changed modules)
        per[t] = (_count(src, a.warm + a.requests) - warm) / a.requests
        print(f"{t}: {per[t]:,.0f} instructions per request", flush=True)
    first = a.trees[0]
    for t in a.trees[1:]:
        print(f"{first} / {t}: {per[first] / per[t]:.4f} ({per[first] - per[t]:+,.0f})")


if __name__ == "__main__":
    main()
