"""CPU time of the scan a route with its own `privacy.routes` rule makes when it runs inside another route
(`privacy/route_rule.RuledRoute`: a guard of its own per call), against the request guard's own scan: is the
nested guard's rescan of texts the request's guard has scanned a large cost? (review31d's leftover.)

A conversation built from the presidio synth sentences (a system prompt, `--turns` user/assistant turns of
`--chars` characters each, a few short texts), pii + secrets, NER off. Per repetition, a fresh request guard scans
it (`first`), a nested guard under it scans it (`nested`: the first call of the inner route), and the request
guard scans it again (`memo`: the same guard's second remote call). Min and median of `--reps` repetitions.

    PYTHONPATH=src HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/privacy_ruled_rescan.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

from tierwise.canonical import Message, Request, TextBlock
from tierwise.policies.base import Context
from tierwise.privacy.boundary import Boundary, Guard
from tierwise.privacy.policy_config import PrivacyConfig
from tierwise.privacy.route_rule import RuledRoute
from tierwise.trace import Trace


def conversation(turns: int, chars: int) -> list[Request]:
    data = Path(os.environ.get("TIERWISE_DATA", "/work/shared/data")) / "pii-presidio-synth" / "synth_dataset_v2.json"
    text = "\n".join(r["full_text"] for r in json.loads(data.read_text()))
    out, at = [], 0
    for k in range(40):  # 40 different requests (each a new client request: no memo, a warm findings cache is
        msgs = []        # what a client resending its conversation sees; the first pass fills it)
        for i in range(turns):
            piece = text[at:at + chars]
            at = (at + chars) % (len(text) - chars)
            msgs.append(Message("user" if i % 2 == 0 else "assistant", [TextBlock(piece), TextBlock(f"ok {k} {i}")]))
        out.append(Request(model="m", messages=msgs, system=[TextBlock("You are a billing assistant.")]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    cfg = PrivacyConfig.model_validate({"ner": {"enabled": False}, "classes": {"pii": {}, "secrets": {}},
                                        "policy": {"pii": "allow"}, "routes": {"inner": {"pii": "local_only"}}})
    b = Boundary(cfg, routes={"main", "inner"})
    inner = RuledRoute("inner", None, SimpleNamespace(privacy=b))  # type: ignore[arg-type]
    reqs = conversation(a.turns, a.chars)
    times: dict[str, list[float]] = {"first": [], "nested": [], "memo": []}
    for _ in range(a.reps):
        spent = dict.fromkeys(times, 0.0)
        for req in reqs:
            outer = Guard(b, "main")
            ctx = Context(trace=Trace("req_bench", "main"), resolve=lambda n: None, privacy=outer)  # type: ignore[arg-type,return-value]
            t0 = time.process_time()
            outer.scan_request(req)
            t1 = time.process_time()
            inner.scoped(ctx).privacy.scan_request(req)  # the guard the route runs its call with
            t2 = time.process_time()
            outer.scan_request(req)
            t3 = time.process_time()
            spent["first"] += t1 - t0
            spent["nested"] += t2 - t1
            spent["memo"] += t3 - t2
        for k, v in spent.items():
            times[k].append(v / len(reqs) * 1e6)
    f = times["first"]
    print(f"{len(reqs)} requests of {a.turns} turns x {a.chars} characters, µs per request scan (min / median of {a.reps}):")
    for k, v in times.items():
        print(f"  {k:6s} {min(v):9.0f} / {statistics.median(v):9.0f}   ({statistics.median(v) / statistics.median(f):.3f} of first)")


if __name__ == "__main__":
    main()
