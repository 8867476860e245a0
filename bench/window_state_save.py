"""What saving a `learned` route's placement window costs (routers/window.py, routers/route_memory.py): a full
`window-tokens` window (1,000 unit vectors of 384 numbers, scores, key names) saved through `RouteMemory.changed`
as a live route does (a snapshot on the event loop, encoded and written in a worker thread), with a loop-lag probe
(a task that sleeps 1 ms and records how late it wakes) running meanwhile.

    PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/window_state_save.py

Prints the file's bytes, the CPU of one encode + write (thread CPU time, median of --saves), and the probe's longest
lateness during saves against its longest lateness over the same number of probes with no save (the machine's
noise), and how the placement of 500 queries (each near a saved request) moves after a restore from the file. Runs against any tree's `src` (the API it uses is the same before and after session 34's winstate34).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tierwise.routers.route_memory import RouteMemory
from tierwise.routers.window import PlacementWindow


def full_window(dims: int, seed: int = 0) -> PlacementWindow:
    rng = np.random.default_rng(seed)
    w = PlacementWindow(key_share=0.25)
    vecs = rng.normal(size=(w.size, dims)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for i in range(w.size):
        w.add(vecs[i], float(rng.normal()), f"key-{i % 7}")
    return w


async def probe(stop: asyncio.Event, lates: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        lates.append(time.perf_counter() - t - 0.001)


async def run(memory: RouteMemory, saves: int, save: bool) -> list[float]:
    stop, lates = asyncio.Event(), []  # type: ignore[var-annotated]
    task = asyncio.create_task(probe(stop, lates))
    for _ in range(saves):
        await asyncio.sleep(0.05)
        if save:
            memory._last_save = 0.0  # a save is due now (a live route: every SAVE_EVERY_S while traffic changes it)
            memory.changed()
            assert memory._writing is not None
            await memory._writing
        else:
            await asyncio.sleep(0.0)
    await asyncio.sleep(0.01)
    stop.set()
    await task
    return lates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--saves", type=int, default=20)
    args = ap.parse_args()
    w = full_window(args.dims)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ledger.db.r.learned.json"
        memory = RouteMemory(path, "router", 0.3, window=w)
        cpu = []
        for _ in range(args.saves):
            snap = memory.snapshot()
            t = time.thread_time()
            memory.write(memory.encode(snap))
            cpu.append(time.thread_time() - t)
        size = path.stat().st_size
        quiet = asyncio.run(run(memory, args.saves, save=False))
        busy = asyncio.run(run(memory, args.saves, save=True))
        back = PlacementWindow(key_share=0.25)
        assert RouteMemory(path, "router", 0.3, window=back).restore() and len(back) == w.size
    rng = np.random.default_rng(1)
    near = w.state()["vectors"][rng.integers(0, w.size, 500)] + 0.5 * rng.normal(size=(500, args.dims)) / np.sqrt(
        args.dims)
    queries = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
    diffs = np.array([abs(back.shift(q) - w.shift(q)) for q in queries])
    print(f"window {w.size} x {args.dims}: file {size:,} bytes")
    print(f"encode + write CPU per save: median {statistics.median(cpu) * 1e3:.1f} ms, max {max(cpu) * 1e3:.1f} ms "
          f"({args.saves} saves)")
    print(f"loop-lag probe, longest lateness: {max(busy) * 1e3:.1f} ms with {args.saves} saves "
          f"({len(busy)} probes), {max(quiet) * 1e3:.1f} ms with none ({len(quiet)} probes)")
    print(f"placement after the restore, 500 queries near saved requests: {int((diffs <= 1e-12).sum())} shifts "
          f"unchanged, largest change {diffs.max():.2e} (shift spread {np.ptp([w.shift(q) for q in queries]):.2f})")


if __name__ == "__main__":
    main()
