"""What a gateway process's memory is made of, batch after batch of load: one `tierwise serve` (the gateway of
bench/gateway_overhead.py) under closed-loop batches (50 clients; OpenAI, translated Anthropic and native
Anthropic requests, plain and streamed, `--seconds` each), probed after every batch from inside the process:

  VmRSS / VmHWM; glibc's heap (mallinfo2: in use, free), and what malloc_trim(0) gives back (`--trim`);
  pymalloc's arenas (sys._debugmallocstats); objects the collector tracks, by type, and their change;
  the ledger's queue (records not yet written: its largest depth during the batch);
  with `--tracemalloc N`, the allocations that grew most since the last probe (N frames each).

    .venv/bin/python bench/memory_growth.py --batches 6 --seconds 4
    .venv/bin/python bench/memory_growth.py --batches 3 --seconds 2 --tracemalloc 3   # slow: tracing

The probe runs inside the gateway (this file is its wrapper: `--wrap` then the command) and answers SIGUSR1
by writing a JSON report next to $PROBE_OUT. Figures are this machine's at its load; the growth
from batch to batch is what to read, not the absolute sizes.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import os
import re
import runpy
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------- inside the gateway


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM", "RssAnon")):
            k, v = line.split(":")
            out[k] = int(v.split()[0]) / 1024
    return out


def _pymalloc() -> dict[str, int]:
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode()
    keep = ("arenas allocated current", "arenas highwater mark", "bytes in allocated blocks", "bytes in available blocks")
    found = {}
    for line in text.splitlines():
        m = re.match(r"#\s*([^=]+?)\s*=\s*([\d,]+)\s*$", line)
        if m and m.group(1) in keep:
            found[m.group(1)] = int(m.group(2).replace(",", ""))
    return found


def _ledger() -> Any:
    for t in threading.enumerate():
        if t.name == "tierwise-ledger":
            return getattr(getattr(t, "_target", None), "__self__", None)
    return None


def wrap(argv: list[str]) -> None:
    """Run `argv` (a console script) with the probe installed."""
    import tracemalloc

    out, frames, trim = os.environ["PROBE_OUT"], int(os.environ.get("PROBE_TM", "0")), os.environ.get("PROBE_TRIM")
    if frames:
        tracemalloc.start(frames)
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    state: dict[str, Any] = {"n": 0, "snap": None, "types": None, "depth": 0}

    def watch() -> None:  # the ledger queue's largest depth between probes
        while True:
            time.sleep(0.05)
            led = _ledger()
            if led is not None:
                state["depth"] = max(state["depth"], led.backlog()["in_memory"])  # the records it holds in memory

    def report(*_: Any) -> None:
        gc.collect()
        r: dict[str, Any] = {"status": _status()}
        if trim:
            libc.malloc_trim(0)
            r["after_trim"] = _status()
        mi = libc.mallinfo2()
        r["heap_MB"] = {"in_use": mi.uordblks / 2**20, "free": mi.fordblks / 2**20, "mmapped": mi.hblkhd / 2**20}
        r["pymalloc"] = _pymalloc()
        r["ledger_queue_max"], state["depth"] = state["depth"], 0
        types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        r["gc_tracked"] = sum(types.values())
        if state["types"] is not None:
            diff = {k: types[k] - state["types"].get(k, 0) for k in set(types) | set(state["types"])}
            r["type_growth"] = sorted(((k, v) for k, v in diff.items() if v), key=lambda kv: -abs(kv[1]))[:10]
        state["types"] = types
        if frames:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            r["traced_MB"] = sum(s.size for s in snap.statistics("filename")) / 2**20
            if state["snap"] is not None:
                r["traced_growth"] = [{"kB": round(s.size_diff / 1024), "blocks": s.count_diff,
                                       "where": " <- ".join(f"{f.filename.split('/site-packages/')[-1]}:{f.lineno}"
                                                            for f in reversed(s.traceback))}
                                      for s in snap.compare_to(state["snap"], "traceback")[:8]]
            state["snap"] = snap
        state["n"] += 1
        tmp = f"{out}.{state['n']}.tmp"
        Path(tmp).write_text(json.dumps(r))
        os.rename(tmp, f"{out}.{state['n']}.json")

    threading.Thread(target=watch, daemon=True, name="memory-probe").start()
    signal.signal(signal.SIGUSR1, report)
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


# ---------------------------------------------------------------------------- the driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4, help="per scenario in a batch (6 scenarios a batch)")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) at every probe, and RSS after it")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES")
    ap.add_argument("--tierwise-src", default=str(HERE.parent))
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import gateway_overhead as g

    work = Path(tempfile.mkdtemp(prefix="tw-memory-"))
    src, label = g.resolve_src(a.tierwise_src, work)
    out = str(work / "probe")
    env = {"PROBE_OUT": out, "PROBE_TM": str(a.tracemalloc), **({"PROBE_TRIM": "1"} if a.trim else {})}
    stub = g.start_stub(0.0)
    tw = g.start_tierwise(stub, work / "tw", src, wrapper=(g.PY, __file__, "--wrap"), extra_env=env)
    base = f"http://127.0.0.1:{tw.port}"
    targets = [g.Target("tierwise", "openai", base, "m", "openai", proc=tw),
               g.Target("tierwise", "anthropic", base, "claude-haiku-4-5", "translated", proc=tw),
               g.Target("tierwise-native", "anthropic", base, "claude-sonnet-4-5", "native", proc=tw)]
    print(f"tierwise: {label}", flush=True)

    def probe(n: int) -> dict[str, Any]:
        os.kill(tw.p.pid, signal.SIGUSR1)
        f = Path(f"{out}.{n}.json")
        deadline = time.monotonic() + 600
        while not f.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway's probe did not answer")
            time.sleep(0.1)
        return json.loads(f.read_text())  # type: ignore[no-any-return]

    def show(what: str, r: dict[str, Any]) -> None:
        s, h, p = r["status"], r["heap_MB"], r["pymalloc"]
        trimmed = f" (after malloc_trim {r['after_trim']['VmRSS']:.1f})" if "after_trim" in r else ""
        print(f"{what}: VmRSS {s['VmRSS']:.1f} MB{trimmed}, VmHWM {s['VmHWM']:.1f}; heap in use {h['in_use']:.1f} free "
              f"{h['free']:.1f}; pymalloc arenas {p.get('arenas allocated current')} (high {p.get('arenas highwater mark')}),"
              f" blocks {p.get('bytes in allocated blocks', 0) / 2**20:.1f} MB; tracked objects {r['gc_tracked']}; "
              f"ledger queue max {r['ledger_queue_max']}" + (f"; traced {r['traced_MB']:.1f} MB" if "traced_MB" in r else ""),
              flush=True)
        if r.get("type_growth"):
            print(f"    tracked objects, change: {r['type_growth']}", flush=True)
        for t in r.get("traced_growth", []):
            print(f"    traced +{t['kB']} kB ({t['blocks']} blocks): {t['where']}", flush=True)

    try:
        show("start", probe(1))
        total = 0
        for b in range(a.batches):
            for stream in (False, True):
                for t in targets:
                    total += g.load(t, "closed", stream=stream, duration=a.seconds, concurrency=a.concurrency)["requests"]
            show(f"batch {b + 1} ({total:,} requests)", probe(b + 2))
    finally:
        tw.stop()
        stub.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--wrap"]:
        wrap(sys.argv[2:])
    else:
        main()
