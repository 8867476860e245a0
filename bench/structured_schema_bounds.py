"""What one structured-output check costs on a hostile client schema: the wall time of `strict_tools._check` (the
check the gateway runs in a verifier thread on a local model's answer) and the process's peak RSS after each case.
Run against any tree with PYTHONPATH; `--bomb` adds the 25-character pattern that took 2.9 GB to compile before
its bound (leave it out on a tree without the bound unless the machine has the memory).

    PYTHONPATH=src .venv/bin/python bench/structured_schema_bounds.py [--bomb]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any


def _cases(bomb: bool) -> list[tuple[str, dict[str, Any], Any]]:
    props = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 50}
                                              for i in range(20_000)}}
    redos = {"type": "array", "items": {"type": "string", "pattern": "^(a|aa)+$"}}
    out = [
        (f"20,000 properties ({len(json.dumps(props)) // 1000} KB schema)", props, {"p1": "a"}),
        ("^(a|aa)+$ on 100 strings of 28 a's and a '!'", redos, ["a" * 28 + "!"] * 100),
        ("pattern (?:x{1000}){30} (30,000 units)", {"type": "string", "pattern": "^(?:x{1000}){30}$"}, "x"),
    ]
    if bomb:
        out.append(("pattern (?:(?:x{1000}){1000}){10}", {"type": "string",
                                                         "pattern": "(?:(?:x{1000}){1000}){10}"}, "x"))
    return out


def _verdict(detail: dict[str, Any]) -> str:
    if "error" in detail:
        return f"not checked ({detail['error']})"
    return f"judged: `{detail['keyword']}` at {detail['where']}" if "keyword" in detail else "judged: passed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bomb", action="store_true")
    args = ap.parse_args()
    from tierwise.wire.strict_tools import _check

    _check({"type": "string"}, "warm")  # the check's imports, not part of any case
    print("| case | check, s | verdict | peak RSS after, MB |")
    print("|---|---:|---|---:|")
    for name, schema, value in _cases(args.bomb):
        t = time.perf_counter()
        v = _check(schema, value)
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"| {name} | {dt:.2f} | {_verdict(v.detail)} | {rss:.0f} |")


if __name__ == "__main__":
    main()
