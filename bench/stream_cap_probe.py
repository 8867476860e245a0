"""One client address opens N streamed requests at once on an open gateway (defaults: provider pool 256,
`max_streams_per_client` and `max_requests_per_client` 64 where the tree has them; `timeouts.pool` 3 s), then
another address asks once (a question the double answers at once).
Prints what A's requests were answered and B's status, and B's status again once A's calls ended (a breaker
that A's pool filling opened refuses B then too). The upstream double holds every stream open after its first
event (with `--whole`: every non-streamed answer) until the end. Run with `--src` to measure another tree.

    PYTHONPATH=src .venv/bin/python bench/stream_cap_probe.py [--streams 300] [--whole] [--src /tmp/base29/src]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=300)
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--whole", action="store_true", help="A's requests are not streamed (stream: false)")
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    sys.path.insert(1, str(ROOT))
    from tests.doubles import OpenAIDouble
    from tests.doubles.script import Gate, Hold, Reply
    from tests.harness import GatewayServer, make_config

    up = OpenAIDouble()
    up.start()
    release = threading.Event()
    held = Gate(release, Reply(text="one two")) if a.whole else Hold(1, release, Reply(text="one two"))
    # B's question ("b") is answered at once: what it gets depends only on whether the gateway lets it through.
    up.default = lambda rec: Reply(text="b") if b'"content":"b"' in rec.raw else held
    cfg = make_config({"server": {"default_route": "local"}, "ledger": {"enabled": False},
                       "providers": {"loc": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local",
                                             "timeouts": {"pool": 3}}},
                       "models": {"local": {"provider": "loc", "model": "m"}}}, Path(tempfile.mkdtemp()))
    g = GatewayServer(cfg).start()

    def request(stream: bool, text: bytes = b"hi") -> bytes:
        body = b'{"model":"local","stream":%s,"messages":[{"role":"user","content":"%s"}]}' % (
            b"true" if stream else b"false", text)
        return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body))

    async def one(source: str, req: bytes) -> tuple[str, object]:
        r, w = await asyncio.open_connection("127.0.0.1", g.port, local_addr=(source, 0))
        if source == "127.0.0.1":
            writers.append(w)
        w.write(req)
        line = await asyncio.wait_for(r.readline(), 60)
        return (line.split()[1].decode() if line else "closed"), w

    writers: list[asyncio.StreamWriter] = []

    async def run() -> None:
        calls = asyncio.gather(*(one("127.0.0.1", request(not a.whole)) for _ in range(a.streams)),
                               return_exceptions=True)
        if a.whole:  # A's answers come only once released: B asks while they are held (after the pool's wait)
            await asyncio.sleep(5.0)
            t = time.monotonic()
            code, _ = await one("127.0.0.2", request(False, b"b"))
            print(f"B (127.0.0.2), one non-streamed request while A's are held: {code} after "
                  f"{time.monotonic() - t:.1f} s; upstream connections checked out: {g.checked_out()}")
            for w in writers:  # A leaves: its calls are cancelled (no success closes a breaker its 503s opened)
                w.transport.abort()
            await asyncio.sleep(1.0)
            release.set()
        got = await calls
        codes: dict[str, int] = {}
        for x in got:
            k = x[0] if isinstance(x, tuple) else type(x).__name__
            codes[k] = codes.get(k, 0) + 1
        print(f"A (127.0.0.1) asked {a.streams} {'non-streamed calls' if a.whole else 'streams'} at once: {dict(sorted(codes.items()))}; "
              f"upstream connections checked out: {g.checked_out()}")
        if not a.whole:
            t = time.monotonic()
            code, _ = await one("127.0.0.2", request(False, b"b"))
            print(f"B (127.0.0.2), one non-streamed request: {code} after {time.monotonic() - t:.1f} s")
            release.set()
        for x in got:
            if isinstance(x, tuple):
                x[1].close()  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)  # (A's calls end: the double answers, the pool's connections come back)
        code, _ = await one("127.0.0.2", request(False, b"b"))
        print(f"B again, once A's calls ended: {code} (breaker: {g.on_loop(lambda: g.app.gw.deployments['local'].breaker.state)})")

    asyncio.run(run())
    g.stop()
    up.stop()


if __name__ == "__main__":
    main()
