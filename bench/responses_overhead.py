"""What the Responses API path costs per request, next to Chat Completions, in one tierwise process.

One stub upstream (bench/stub_upstream.py, OpenAI and Anthropic formats), one `tierwise serve`
(the config of bench/gateway_overhead.py), and bench/loadgen.py in its own process. Rows:

  chat → openai       Chat Completions to an OpenAI-format upstream: same format, bytes pass through
  chat → anthropic    Chat Completions to an Anthropic upstream: decoded and re-encoded both ways
  responses → openai  Responses to an OpenAI-format upstream: always translated (no upstream speaks it)
  responses → anthropic

For each row and round: serial p50 latency (one request at a time), requests/s and the gateway's
CPU time per request with 50 concurrent clients, plain and streamed. Rows alternate within a round
(reversed on odd rounds); medians over rounds are printed as a Markdown table.

    python bench/responses_overhead.py --rounds 3
    python bench/responses_overhead.py --quick --rounds 1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import Target, cpu_s, load, start_stub, start_tierwise  # noqa: E402

ROWS = [("chat → openai", "openai", "m"), ("chat → anthropic", "openai", "x-sonnet"),
        ("responses → openai", "responses", "m"), ("responses → anthropic", "responses", "x-sonnet")]


def check(t: Target) -> None:
    """One plain and one streamed request must come back 200 with the stub's words."""
    import http.client

    from loadgen import request_for
    for stream in (False, True):
        path, body, headers = request_for(t.api, stream, t.model)
        host, port = t.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        raw = r.read().decode()
        conn.close()
        if r.status != 200 or "w49" not in raw:
            raise SystemExit(f"{t.label} ({'stream' if stream else 'plain'}): HTTP {r.status}: {raw[:300]}")
        if t.api == "responses" and '"response.completed"' not in raw and '"object":"response"' not in raw:
            raise SystemExit(f"{t.label}: not a Responses answer: {raw[:300]}")


def measure(t: Target, quick: bool) -> dict[str, float]:
    d, n = (3, 300) if quick else (8, 1500)
    out: dict[str, float] = {}
    out["serial_p50"] = load(t, "serial", n=n)["p50_ms"]
    for name, stream in (("c50", False), ("stream_c50", True)):
        assert t.proc is not None
        cpu0 = cpu_s(t.proc.p.pid)
        r = load(t, "closed", concurrency=50, duration=d, stream=stream)
        out[f"rps_{name}"] = r["rps"]
        out[f"cpu_{name}"] = (cpu_s(t.proc.p.pid) - cpu0) * 1e6 / max(1, r["requests"] + 50)
        out[f"errors_{name}"] = r["errors"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    stub = start_stub(0.0)
    work = Path(tempfile.mkdtemp(prefix="tierwise-responses-bench-"))
    gw = start_tierwise(stub, work)
    try:
        targets = [Target(label, api, f"http://127.0.0.1:{gw.port}", model, label, proc=gw)
                   for label, api, model in ROWS]
        for t in targets:
            check(t)
        results: dict[str, list[dict[str, float]]] = {t.label: [] for t in targets}
        for rnd in range(a.rounds):
            for t in (targets if rnd % 2 == 0 else list(reversed(targets))):
                r = measure(t, a.quick)
                results[t.label].append(r)
                print(f"round {rnd + 1} {t.label}: {json.dumps({k: round(v, 2) for k, v in r.items()})}",
                      file=sys.stderr, flush=True)
    finally:
        gw.stop()
        stub.stop()
    cols = (("serial p50 ms", "serial_p50", 2), ("rps c50", "rps_c50", 0), ("CPU µs/req c50", "cpu_c50", 0),
            ("stream rps c50", "rps_stream_c50", 0), ("CPU µs/req stream c50", "cpu_stream_c50", 0),
            ("errors", "errors_c50", 0))
    print("| path | " + " | ".join(c[0] for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label, rs in results.items():
        vals = []
        for _, key, digits in cols:
            xs = [r[key] for r in rs if not math.isnan(r[key])]
            vals.append(f"{statistics.median(xs):,.{digits}f}" if xs else "-")
        print(f"| {label} | " + " | ".join(vals) + " |")
    print(f"\n{a.rounds} round(s){' (quick)' if a.quick else ''}; medians over rounds.")


if __name__ == "__main__":
    main()
