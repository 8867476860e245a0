"""Soak: a steady open-loop load through the gateway for a long time, with random upstream
faults injected, to show that nothing leaks (memory, ledger rows) and that every error a
client sees is explained by an injected fault.

    python bench/soak.py                          # 10 minutes at 50 req/s, 5% of upstream calls faulty
    python bench/soak.py --duration 20 --rate 30  # a quick check

Set-up, all on loopback: two stub upstreams (bench/stub_upstream.py), both injecting faults
at `--fault-rate` (HTTP 500, HTTP 429 with retry-after 0, connection dropped before any
byte, answer cut part-way, answer later than the read timeout). The gateway's route `main`
is a fallback: model `a` (OpenAI-compatible provider on stub A), then model `b` (Anthropic
provider on stub B), one retry each, read timeout 1 s. The load is a seeded, even mix of
OpenAI and Anthropic clients, streamed and not; every request carries a tag `soak-id:N` in
its prompt, so the stubs can say which of their calls (and faults) belonged to which request.

What a client can see, per request:
  ok            HTTP 200 and the complete answer (the stub's exact text; a stream that ends
                with its API's terminator: `data: [DONE]` / `event: message_stop`)
  http_error    an HTTP error status whose body is valid JSON in the API's error schema
  stream_error  HTTP 200, then a stream that ends with an error event in the API's schema
                (OpenAI: a `data: {"error": ...}` chunk; Anthropic: `event: error`)
  bad           anything else with a response: a truncated or wrong answer, a stream with
                neither terminator nor error event, an error body that is not in the schema
  no_response   no HTTP response at all (connection error, or nothing within 30 s: a hang)

The exact rule for "explained" (every other client-visible error is UNEXPLAINED; goal 0):
  * http_error with status != 500 is explained when the stubs saw the request and every
    call they saw for it got a fault: all attempts of every target failed by injection. With
    no call seen at all it is explained only as a 503 (a circuit breaker opened by earlier
    faults); those are counted apart, as `breaker_rejections`.
  * stream_error is explained when the last call the stubs saw for the request (the
    answering one: targets are tried in order, a's calls before b's) got the `cut` fault,
    the one fault that cannot be absorbed once the first bytes have gone to the client.
  * HTTP 500 (an error of the gateway itself), bad and no_response are never explained.
So a gateway bug (a Python error, a hang, a lost or mangled answer, an error after an
upstream answered fine) shows up as unexplained.

Also checked: ledger rows vs requests that got any HTTP response (goal: equal, the same
request ids, and a status that matches what the client saw: the HTTP status, or for a
stream that ended with an error event any status but 200); the gateway's resident memory
(VmRSS) after a warm-up and at the end (goal: < 10% growth); a clean stop, and no WARNING
or ERROR line in its log other than the one line per failed request the console writes (their
count must equal the errors the clients saw). Breaker rejections are shown apart (at 5% faults, expect none).
The gateway is stopped with SIGTERM before the ledger is read (it flushes on a clean stop).
Writes bench/out/soak.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import Proc, rss_mb, serve_tierwise, start_stub  # noqa: E402
from loadgen import request_for  # noqa: E402
from stub_upstream import TEXT  # noqa: E402

CLIENT_TIMEOUT = 30.0
READ_TIMEOUT = 1.0  # the gateway's read timeout for both providers; the stubs' `slow` fault waits 1.5 s
ROUTE = "main"
FAULT_LETTERS = frozenset("54dcs")


def soak_config(port: int, workdir: Path, stub_a: Proc, stub_b: Proc) -> str:
    timeouts = f"{{connect: 1, read: {READ_TIMEOUT}}}"
    return f"""
server: {{port: {port}}}
ledger: {{path: {workdir / 'ledger.db'}}}
providers:
  a: {{kind: openai, base_url: "http://127.0.0.1:{stub_a.port}/v1", locality: local, timeouts: {timeouts}}}
  b: {{kind: anthropic, base_url: "http://127.0.0.1:{stub_b.port}", locality: local, timeouts: {timeouts}}}
models:
  a: {{provider: a, model: stub-model}}
  b: {{provider: b, model: stub-model}}
routes:
  {ROUTE}:
    policy: fallback
    targets: [a, b]
    retries: 1
    backoff_base: 0.05
"""


# ---------------------------------------------------------------------------- client side


def request_templates() -> dict[tuple[str, bool], tuple[str, dict[str, Any], dict[str, str]]]:
    out = {}
    for api in ("openai", "anthropic"):
        for stream in (False, True):
            path, body, headers = request_for(api, stream, ROUTE)
            out[(api, stream)] = (path, json.loads(body), headers)
    return out


def tagged(body: dict[str, Any], i: int) -> bytes:
    msg = body["messages"][0]
    return json.dumps({**body, "messages": [{**msg, "content": f"soak-id:{i} {msg['content']}"}]}).encode()


def error_in_schema(api: str, obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    err = obj.get("error")
    if api == "anthropic" and obj.get("type") != "error":
        return False
    return isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("type"), str)


def sse_messages(raw: bytes) -> list[tuple[str | None, str]]:
    out = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if event is not None or data:
            out.append((event, "\n".join(data)))
    return out


def classify_stream(api: str, raw: bytes) -> tuple[str, str]:
    """(outcome, detail) of a 200 stream's body."""
    text: list[str] = []
    ended = False
    for event, data in sse_messages(raw):
        if api == "openai" and data == "[DONE]":
            ended = True
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            return "bad", f"stream message is not JSON: {data[:200]!r}"
        if (api == "anthropic" and event == "error") or (api == "openai" and isinstance(obj, dict) and "error" in obj):
            if error_in_schema(api, obj):
                return "stream_error", obj["error"]["message"][:300]
            return "bad", f"error event not in the {api} schema: {data[:200]!r}"
        try:
            if api == "openai":
                for c in obj.get("choices") or []:
                    text.append(c.get("delta", {}).get("content") or "")
            elif event == "content_block_delta":
                text.append(obj["delta"].get("text", ""))
            elif event == "message_stop":
                ended = True
        except (AttributeError, KeyError, TypeError):
            return "bad", f"unexpected stream message: {data[:200]!r}"
    if not ended:
        return "bad", "stream ended without its terminator or an error event"
    if "".join(text) != TEXT:
        return "bad", "streamed text differs from the upstream's"
    return "ok", ""


def classify(api: str, stream: bool, status: int, ctype: str, raw: bytes) -> tuple[str, str]:
    if status == 200 and stream and ctype.startswith("text/event-stream"):
        return classify_stream(api, raw)
    try:
        obj = json.loads(raw)
    except ValueError:
        return "bad", f"HTTP {status}, body is not JSON: {raw[:200]!r}"
    if status != 200:
        if error_in_schema(api, obj):
            return "http_error", obj["error"]["message"][:300]
        return "bad", f"HTTP {status}, error body not in the {api} schema: {raw[:200]!r}"
    try:
        if api == "openai":
            text = obj["choices"][0]["message"]["content"]
        else:
            text = "".join(b["text"] for b in obj["content"] if b.get("type") == "text")
    except (KeyError, IndexError, TypeError):
        return "bad", f"HTTP 200, answer not in the {api} schema: {raw[:200]!r}"
    return ("ok", "") if text == TEXT else ("bad", "answer text differs from the upstream's")


async def one(session: aiohttp.ClientSession, url: str, i: int, api: str, stream: bool, body: bytes,
              headers: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {"i": i, "api": api, "stream": stream, "status": None, "rid": None}
    t0 = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)) as r:
            rec["status"], rec["rid"] = r.status, r.headers.get("x-tierwise-request-id")
            raw = await r.read()
        rec["outcome"], rec["detail"] = classify(api, stream, r.status, r.headers.get("content-type", ""), raw)
    except TimeoutError:
        rec["outcome"], rec["detail"] = "no_response", f"nothing (more) within {CLIENT_TIMEOUT:g}s"
    except aiohttp.ClientError as e:
        rec["outcome"], rec["detail"] = "no_response", f"{type(e).__name__}: {e}"[:300]
    rec["ms"] = (time.perf_counter() - t0) * 1000
    return rec


async def drive(base: str, duration: float, rate: float, seed: int, gateway_pid: int,
                warmup: float) -> tuple[list[dict[str, Any]], list[dict[str, float]], float]:
    """Open loop: request i leaves at start + i/rate whatever the earlier ones are doing."""
    rng = random.Random(seed)
    templates = request_templates()
    combos = list(templates)
    n = int(duration * rate)
    rss: list[dict[str, float]] = []
    max_lag = 0.0
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = []
        start = time.monotonic()
        next_rss = start + warmup
        for i in range(n):
            api, stream = combos[rng.randrange(len(combos))]
            path, body, headers = templates[(api, stream)]
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                max_lag = max(max_lag, now - due)
            tasks.append(asyncio.ensure_future(one(session, base + path, i, api, stream, tagged(body, i), headers)))
            if time.monotonic() >= next_rss:
                rss.append({"t": time.monotonic() - start, "rss_mb": rss_mb(gateway_pid, "VmRSS")})
                next_rss += 10
        records = list(await asyncio.gather(*tasks))
        rss.append({"t": time.monotonic() - start, "rss_mb": rss_mb(gateway_pid, "VmRSS")})
    return records, rss, max_lag


# ---------------------------------------------------------------------------- analysis


def stub_stats(stub: Proc) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{stub.port}/stats", timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def explain(rec: dict[str, Any], hits: str) -> str | None:
    """Why this client-visible error is explained ('fault' or 'breaker'), or None: unexplained."""
    outcome = rec["outcome"]
    if outcome == "http_error" and rec["status"] != 500:
        if hits and all(h in FAULT_LETTERS for h in hits):
            return "fault"
        if not hits and rec["status"] == 503:
            return "breaker"
        return None
    if outcome == "stream_error" and hits.endswith("c"):
        return "fault"
    return None


def read_ledger(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT request_id, status FROM requests").fetchall())
    finally:
        db.close()


def expected_ledger_status(rec: dict[str, Any]) -> int | None:
    """The status the ledger should hold for a request: the HTTP status, or the error's for a stream
    that ended with an error event (None: any, since the client cannot tell)."""
    if rec["outcome"] == "stream_error":
        return None
    return rec["status"]  # type: ignore[no-any-return]


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of load")
    ap.add_argument("--rate", type=float, default=50, help="requests per second (open loop)")
    ap.add_argument("--fault-rate", type=float, default=0.05, help="share of upstream calls given a fault")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=10, help="seconds of load before the first RSS sample")
    a = ap.parse_args()
    warmup = min(a.warmup, a.duration / 2)

    work = Path(tempfile.mkdtemp(prefix="tw-soak-"))
    stubs: list[Proc] = []
    gw: Proc | None = None
    try:
        for k in range(2):
            stubs.append(start_stub(0.0, "--fault-rate", str(a.fault_rate), "--seed", str(a.seed * 10 + k)))
        stub_a, stub_b = stubs
        gw = serve_tierwise(work, lambda port: soak_config(port, work, stub_a, stub_b))
        base = f"http://127.0.0.1:{gw.port}"
        print(f"soak: {a.duration:g}s at {a.rate:g} req/s, fault rate {a.fault_rate:g}, seed {a.seed}; "
              f"gateway pid {gw.p.pid} on {base}", flush=True)
        t0 = time.monotonic()
        records, rss, max_lag = asyncio.run(drive(base, a.duration, a.rate, a.seed, gw.p.pid, warmup))
        elapsed = time.monotonic() - t0
        stats = [stub_stats(s) for s in stubs] if a.fault_rate > 0 else [{}, {}]
        gw.stop()
        gw_rc = gw.p.returncode
        gw_log = Path(gw.log.name).read_text(errors="replace")
        ledger = read_ledger(work / "ledger.db")
    finally:
        if gw is not None:
            gw.stop()
        for s in stubs:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    # -- faults and errors
    faults: dict[str, int] = {}
    for st in stats:
        for kind, c in st.get("faults", {}).items():
            faults[kind] = faults.get(kind, 0) + c
    hits_a, hits_b = stats[0].get("hits", {}), stats[1].get("hits", {})
    upstream_calls = sum(st.get("requests", 0) for st in stats)
    counts: dict[str, int] = {}
    unexplained, errors = [], []
    breaker = absorbed = 0
    for rec in records:
        counts[rec["outcome"]] = counts.get(rec["outcome"], 0) + 1
        hits = hits_a.get(str(rec["i"]), "") + hits_b.get(str(rec["i"]), "")
        rec["hits"] = hits
        if rec["outcome"] == "ok":
            absorbed += sum(h in FAULT_LETTERS for h in hits)
            continue
        errors.append(rec)
        why = explain(rec, hits)
        rec["explained"] = why
        if why is None:
            unexplained.append(rec)
        elif why == "breaker":
            breaker += 1
    answered = [r for r in records if r["status"] is not None]

    # -- ledger
    ids = {r["rid"] for r in answered if r["rid"]}
    no_id = sum(1 for r in answered if not r["rid"])
    missing = sorted(ids - set(ledger))
    extra = sorted(set(ledger) - ids)
    mismatched = [
        {"rid": r["rid"], "client": r["status"], "outcome": r["outcome"], "ledger": ledger[r["rid"]]}
        for r in answered
        if r["rid"] in ledger and (
            (expected_ledger_status(r) is not None and ledger[r["rid"]] != expected_ledger_status(r))
            or (r["outcome"] == "stream_error" and ledger[r["rid"]] == 200)
        )
    ]

    # -- memory
    rss_start = rss[0]["rss_mb"] if rss else float("nan")
    rss_end = rss[-1]["rss_mb"] if rss else float("nan")
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start else float("nan")
    log_problems = [ln for ln in gw_log.splitlines()
                    if any(w in ln for w in (" WARNING ", " ERROR ", " CRITICAL ")) or ln.startswith("Traceback")]
    # The console says each failed request once (tierwise.console_log): expected, one per error the
    # clients saw. Anything else at WARNING or above is a problem.
    failure_lines = [ln for ln in log_problems if " tierwise.requests: request " in ln]
    log_errors = [ln for ln in log_problems if " tierwise.requests: request " not in ln]

    ok_ms = [r["ms"] for r in records if r["outcome"] == "ok"]
    visible = len(records) - counts.get("ok", 0)
    summary = {
        "duration_s": a.duration, "rate": a.rate, "fault_rate": a.fault_rate, "seed": a.seed,
        "elapsed_s": elapsed, "max_send_lag_ms": max_lag * 1000,
        "requests": len(records), "responses": len(answered), "outcomes": counts,
        "client_visible_errors": visible, "upstream_calls": upstream_calls,
        "faults_injected": sum(faults.values()), "faults_by_kind": faults, "faults_absorbed": absorbed,
        "explained_errors": visible - len(unexplained), "breaker_rejections": breaker,
        "unexplained_errors": len(unexplained),
        "ledger_rows": len(ledger), "ledger_missing": len(missing), "ledger_extra": len(extra),
        "responses_without_request_id": no_id, "ledger_status_mismatches": len(mismatched),
        "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_growth_pct": growth,
        "gateway_exit_code": gw_rc, "gateway_log_problems": len(log_errors), "failure_lines": len(failure_lines), "gateway_log": gw.log.name,
        "ok_latency_p50_ms": pct(ok_ms, 0.5), "ok_latency_p99_ms": pct(ok_ms, 0.99),
        "ok_latency_mean_ms": statistics.fmean(ok_ms) if ok_ms else float("nan"),
    }
    checks = [
        ("unexplained errors", f"{len(unexplained)}", "0", not unexplained),
        ("ledger rows vs responses", f"{len(ledger)} / {len(answered)} (missing {len(missing)}, extra {len(extra)}, "
         f"status mismatches {len(mismatched)})", "equal",
         not missing and not extra and not mismatched and not no_id and len(ledger) == len(answered)),
        ("gateway RSS after warm-up → end", f"{rss_start:.1f} → {rss_end:.1f} MB ({growth:+.1f}%)", "< 10%",
         growth < 10),
        # uvicorn re-raises the SIGTERM it handled once its shutdown is done: -15 is a clean stop.
        ("gateway stop / log", f"exit {gw_rc}, {len(log_errors)} other WARNING/ERROR lines", "clean (0 or -15), 0",
         gw_rc in (0, -signal.SIGTERM) and not log_errors),
        ("failed requests logged once each", f"{len(failure_lines)} lines / {visible} client-visible errors", "equal",
         len(failure_lines) == visible),
        # Information, not a goal: at a low fault rate a breaker should (almost) never open.
        ("breaker rejections (503, no upstream call)", f"{breaker}", "-", None),
    ]
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps({
        "summary": summary,
        "checks": [{"check": c, "value": v, "goal": g, "pass": p} for c, v, g, p in checks],
        "rss_series": rss,
        "unexplained": unexplained[:200],
        "errors": errors[:2000],
        "ledger_missing": missing[:200], "ledger_extra": extra[:200], "ledger_status_mismatches": mismatched[:200],
        "gateway_log_problems": log_errors[:200],
    }, indent=1))

    print()
    print(f"soak: {len(records)} requests in {elapsed:.0f}s ({a.rate:g}/s open loop, max send lag "
          f"{max_lag * 1000:.0f} ms), fault rate {a.fault_rate:g}; ok p50 {summary['ok_latency_p50_ms']:.1f} ms, "
          f"p99 {summary['ok_latency_p99_ms']:.1f} ms")
    print(f"outcomes: {json.dumps(counts)}; upstream calls {upstream_calls}, faults injected "
          f"{sum(faults.values())} {json.dumps(faults)}, absorbed (client got ok) {absorbed}; "
          f"client-visible errors {visible}, explained {visible - len(unexplained)} "
          f"(of which breaker rejections {breaker})")
    print()
    print("| check | value | goal | pass |")
    print("|---|---|---|---|")
    for c, v, g, p in checks:
        print(f"| {c} | {v} | {g} | {'-' if p is None else 'yes' if p else 'NO'} |")
    for r in unexplained[:10]:
        print(f"  unexplained: #{r['i']} {r['api']} stream={r['stream']} HTTP {r['status']} {r['outcome']} "
              f"hits={r['hits']!r}: {r['detail']}")
    print(f"\nwrote {out / 'soak.json'}")


if __name__ == "__main__":
    main()
