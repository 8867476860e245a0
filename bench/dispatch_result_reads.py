"""The caller's side of dispatch: CPU per task and latency, on the tierwise source tree PYTHONPATH names.

A redis-server of this run's own (free port, no persistence), one in-process worker (capacity 8) on an
OpenAI double answering at once, one Dispatcher; `--tasks` tasks one at a time (median latency), then
`--tasks` at once (caller-process CPU per task: the caller and the worker share the process, so this
is both sides' CPU), `--rounds` times. Run it under two trees to compare them:

    PYTHONPATH=/work/main/src .venv/bin/python bench/dispatch_result_reads.py
    PYTHONPATH=src .venv/bin/python bench/dispatch_result_reads.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dispatch.conftest import echo, running_worker, worker_config  # noqa: E402
from tests.doubles import OpenAIDouble  # noqa: E402
from tests.harness import free_port  # noqa: E402


async def run(url: str, tmp: Path, tasks: int, rounds: int) -> None:
    import tierwise
    from tierwise.dispatch.client import Dispatcher

    up = OpenAIDouble()
    up.default = echo()
    up.start()
    cfg = worker_config(up.url, "bench:", worker_id="box-1", capacity=8, redis_url=url)
    serial, cpu = [], []
    async with running_worker(cfg, tmp), Dispatcher(url, tenant="acme", prefix="bench:") as d:
        await asyncio.gather(*[d.dispatch("classify", f"warm {i}") for i in range(50)])
        for _ in range(rounds):
            lat = []
            for i in range(tasks):
                t0 = time.perf_counter()
                await d.dispatch("classify", f"s {i}")
                lat.append((time.perf_counter() - t0) * 1000)
            serial.append(statistics.median(lat))
            c0 = time.process_time()
            await asyncio.gather(*[d.dispatch("classify", f"c {i}") for i in range(tasks)])
            cpu.append((time.process_time() - c0) / tasks * 1e6)
    up.stop()
    print(f"{Path(tierwise.__file__).parent}: serial p50 ms {[round(x, 3) for x in serial]} "
          f"median {statistics.median(serial):.3f}; CPU µs/task at once {[round(x) for x in cpu]} "
          f"median {statistics.median(cpu):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            asyncio.run(run(f"redis://127.0.0.1:{port}/0", Path(d), args.tasks, args.rounds))
        finally:
            rs.kill()
            rs.wait()


if __name__ == "__main__":
    main()
