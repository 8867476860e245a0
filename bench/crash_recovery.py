"""Crash recovery: `kill -9` the gateway under load, again and again, and count the answered
requests that have no ledger row after the restart (goal: 0).

    python bench/crash_recovery.py                      # 5 kills, 100 req/s, kill 1.5-4 s into each run
    python bench/crash_recovery.py --kills 10 --rate 200
    python bench/crash_recovery.py --no-journal         # the same without the ledger's crash journal

Set-up as bench/soak.py (stub upstreams on loopback, route `main` = fallback a → b, an even
mix of OpenAI and Anthropic clients, streamed and not, open loop), but without injected faults
unless `--fault-rate` asks. Each run: start `tierwise serve` on the same ledger, send load, and at
a random moment SIGKILL the process. "Answered" = the client got a complete response (a full
answer, an error in the API's schema, or a stream that ended with its terminator or an error
event), with the gateway's request id. The next start replays what the killed process
journaled; after the last run the gateway is started once more, stopped with SIGTERM, and the
ledger is read: recorded = answered requests with a row; lost = answered - recorded.
Writes bench/out/crash_recovery.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import Proc, serve_tierwise, start_stub  # noqa: E402
from soak import one, read_ledger, request_templates, soak_config, tagged  # noqa: E402

COMPLETE = frozenset({"ok", "http_error", "stream_error"})


async def load_then_kill(base: str, pid: int, rate: float, kill_at: float, first_i: int,
                         rng: random.Random) -> list[dict[str, Any]]:
    """Open-loop load until `kill_at` seconds, then SIGKILL `pid`; every request's outcome."""
    templates = request_templates()
    combos = list(templates)
    tasks = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.monotonic()
        i = 0
        while True:
            due = start + i / rate
            if due >= start + kill_at:
                break
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            api, stream = combos[rng.randrange(len(combos))]
            path, body, headers = templates[(api, stream)]
            n = first_i + i
            tasks.append(asyncio.ensure_future(one(session, base + path, n, api, stream, tagged(body, n), headers)))
            i += 1
        os.kill(pid, signal.SIGKILL)  # mid-load: requests in every stage are in flight
        return list(await asyncio.gather(*tasks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--rate", type=float, default=100, help="requests per second (open loop)")
    ap.add_argument("--min-s", type=float, default=1.5, help="earliest kill, seconds into a run")
    ap.add_argument("--max-s", type=float, default=4.0, help="latest kill, seconds into a run")
    ap.add_argument("--fault-rate", type=float, default=0.0, help="share of upstream calls given a fault")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-journal", action="store_true", help="run with ledger.journal.enabled: false")
    a = ap.parse_args()
    rng = random.Random(a.seed)

    work = Path(tempfile.mkdtemp(prefix="tw-crash-"))
    stubs: list[Proc] = []
    runs: list[dict[str, Any]] = []
    gw: Proc | None = None

    def config(port: int) -> str:
        text = soak_config(port, work, stubs[0], stubs[1])
        if a.no_journal:
            text = text.replace("ledger: {path:", "ledger: {journal: {enabled: false}, path:")
        return text

    try:
        for k in range(2):
            stubs.append(start_stub(0.0, "--fault-rate", str(a.fault_rate), "--seed", str(a.seed * 10 + k)))
        first_i = 0
        for k in range(a.kills):
            gw = serve_tierwise(work, config)
            kill_at = rng.uniform(a.min_s, a.max_s)
            records = asyncio.run(load_then_kill(f"http://127.0.0.1:{gw.port}", gw.p.pid, a.rate, kill_at, first_i,
                                                 rng))
            gw.p.wait(timeout=30)
            first_i += len(records)
            answered = [r["rid"] for r in records if r["outcome"] in COMPLETE and r["rid"]]
            runs.append({"kill": k + 1, "kill_at_s": round(kill_at, 2), "sent": len(records),
                         "answered_ids": answered, "exit": gw.p.returncode})
            print(f"kill {k + 1}: {len(answered)} answered of {len(records)} sent, SIGKILL at {kill_at:.2f}s "
                  f"(exit {gw.p.returncode})", flush=True)
        gw = serve_tierwise(work, config)  # the last start replays the last kill's journal
        gw.stop()
        ledger = read_ledger(work / "ledger.db")
        journal_left = sorted(p.name for p in (work / "ledger.db.journal.d").glob("*.jsonl")) \
            if (work / "ledger.db.journal.d").exists() else []
    finally:
        if gw is not None:
            gw.stop()
        for s in stubs:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    table = []
    for r in runs:
        ids = r.pop("answered_ids")
        lost = [i for i in ids if i not in ledger]
        r.update(answered=len(ids), recorded=len(ids) - len(lost), lost=len(lost), lost_ids=lost[:50])
        table.append(r)
    total = {k: sum(r[k] for r in table) for k in ("sent", "answered", "recorded", "lost")}
    summary = {"kills": a.kills, "rate": a.rate, "journal": not a.no_journal, "fault_rate": a.fault_rate,
               "seed": a.seed, **total, "ledger_rows": len(ledger), "journal_files_left": journal_left,
               "all_killed_by_sigkill": all(r["exit"] == -signal.SIGKILL for r in table)}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "crash_recovery.json").write_text(json.dumps({"summary": summary, "runs": table}, indent=1))
    print()
    print(f"crash recovery: {a.kills} × kill -9 at {a.rate:g} req/s, journal {'on' if not a.no_journal else 'off'}")
    print("| kill | at (s) | sent | answered | recorded | lost |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['kill']} | {r['kill_at_s']} | {r['sent']} | {r['answered']} | {r['recorded']} | {r['lost']} |")
    print(f"| all | | {total['sent']} | {total['answered']} | {total['recorded']} | {total['lost']} |")
    print(f"\nledger rows {len(ledger)}; journal files left after the clean stop: {len(journal_left)}")
    print(f"wrote {out / 'crash_recovery.json'}")


if __name__ == "__main__":
    main()
