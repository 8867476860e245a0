"""Loaded by a benched `tierwise serve` whose PYTHONPATH ends with bench/opcode_probe (bench/opcode_count.py):
on SIGUSR1 starts counting the bytecodes every Python function executes (sys.settrace with opcode
events: slow, but a count, not a time), and the lines of tierwise's budgets and cache modules; on
SIGUSR2 stops and writes the counts as JSON to $TW_OP_LOG.<n>."""

import collections
import json
import os
import signal
import sys

_path = os.environ.get("TW_OP_LOG")
if _path:
    _ops: collections.Counter = collections.Counter()
    _calls: collections.Counter = collections.Counter()
    _lines: collections.Counter = collections.Counter()

    def _local(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "opcode":
            co = frame.f_code
            _ops[co] += 1
            if "budgets" in co.co_filename or "cache" in co.co_filename:
                _lines[(co.co_filename, frame.f_lineno)] += 1
        return _local

    def _global(frame, event, arg):  # type: ignore[no-untyped-def]
        frame.f_trace_opcodes = True
        _calls[frame.f_code] += 1
        return _local

    def _start(*_: object) -> None:
        _ops.clear()
        _calls.clear()
        _lines.clear()
        sys.settrace(_global)

    def _dump(*_: object) -> None:
        sys.settrace(None)

        def name(co):  # type: ignore[no-untyped-def]
            return f"{co.co_filename.split('/src/')[-1].split('site-packages/')[-1]}:{co.co_firstlineno}:{co.co_qualname}"

        n = len([p for p in os.listdir(os.path.dirname(_path)) if p.startswith(os.path.basename(_path))])
        with open(f"{_path}.{n}", "w") as f:
            json.dump({"functions": {name(co): [k, _calls.get(co, 0)] for co, k in _ops.items()},
                       "lines": [[fn.split("/src/")[-1], ln, k] for (fn, ln), k in _lines.items()]}, f)

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
