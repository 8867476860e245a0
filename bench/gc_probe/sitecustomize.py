"""Loaded by a benched `tierwise serve` whose PYTHONPATH ends with bench/gc_probe (budgets_overhead.py
--gc-probe): times every garbage collection with `gc.callbacks` and, on SIGUSR2, writes them to
$TW_GC_LOG as JSON: [[start (time.monotonic, system-wide), generation, seconds, collected], ...] and
the number of objects the collector tracks."""

import gc
import json
import os
import signal
import time

_path = os.environ.get("TW_GC_LOG")
if _path:
    _events: list[tuple[float, int, float, int]] = []
    _start = [0.0]

    def _timed(phase: str, info: dict) -> None:
        if phase == "start":
            _start[0] = time.monotonic()
        else:
            _events.append((_start[0], info["generation"], time.monotonic() - _start[0], info["collected"]))

    def _dump(*_: object) -> None:
        with open(_path, "w") as f:
            json.dump({"events": _events, "tracked": len(gc.get_objects())}, f)

    gc.callbacks.append(_timed)
    signal.signal(signal.SIGUSR2, _dump)
