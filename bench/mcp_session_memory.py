"""Memory one MCP session holds on `tierwise mcp --transport http`, and how many one token holder may open
(session 22, attack-mcp). Starts the real server (the tests' helper: a stub upstream, a temporary project),
opens `--sessions` sessions with `initialize` (never closed) and reads the server's resident memory before
and after; every answer's status is counted (503: the session bound).

    PYTHONPATH=$PWD/src .venv/bin/python bench/mcp_session_memory.py --sessions 2000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=2000)
    a = ap.parse_args()
    import aiohttp
    import yaml

    from tests.ensembles.conftest import stub_config, write_ensemble, write_profile
    from tests.ensembles.upstream import StubUpstream
    from tests.mcp.test_mcp_http import INIT, MCP_HEADERS, TOKEN, start

    up = StubUpstream().start()
    proj = Path(tempfile.mkdtemp(prefix="mcp-sessions")) / "proj"
    (proj / ".tierwise" / "ensembles").mkdir(parents=True)
    (proj / ".tierwise" / "profiles").mkdir(parents=True)
    write_profile(proj, "worker", model="small")
    write_ensemble(proj, {"name": "triage", "agents": [{"name": "only", "profile": "worker", "prompt": "triage"}]})
    (proj / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(up.url)))
    server = start(proj)
    threading.Thread(target=lambda: [None for _ in server.proc.stderr], daemon=True).start()  # (its log)
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}

    async def run() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as s:
            async def one() -> int:
                async with s.post(server.url, data=json.dumps(INIT), headers=headers) as r:
                    await r.read()
                    return r.status

            await asyncio.gather(*(one() for _ in range(20)))  # warm
            before = rss_kib(server.proc.pid)
            statuses = collections.Counter(await asyncio.gather(*(one() for _ in range(a.sessions))))
            after = rss_kib(server.proc.pid)
            opened = statuses.get(200, 0)
            print(f"{a.sessions} initialize requests: {dict(statuses)}; server RSS {before:,} -> {after:,} KiB"
                  + (f" ({(after - before) / opened:.1f} KiB per session opened)" if opened else ""))

    try:
        asyncio.run(run())
    finally:
        server.proc.kill()
        up.stop()


if __name__ == "__main__":
    main()
