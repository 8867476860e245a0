"""What the privacy boundary (tierwise.privacy.boundary) costs per model call, in one run.

Part 1, in process (timeit on this thread's CPU time, or elapsed time with `--wall`; median of
interleaved rounds):
- off: with no `privacy:` config the seam is one test in `Deployment.complete/stream`
  (`self.privacy is not None and check is None`): its cost, timed on a real Deployment, and,
  for scale, a whole `Deployment.complete` with the HTTP exchange replaced by a canned answer;
- on, `pii: redact`, structured detectors (NER off), a ~2,000-token request (system prompt,
  6 turns, a tool call and its result) holding 16 sensitive values: the first crossing of a
  request (scan of every text + policy + redaction + the leak check on the encoded body +
  restore of a ~100-token answer echoing the placeholders), and a warm crossing (the next
  remote call of the same request: a cascade's second tier, a judge; findings memoised);
- the same request without any sensitive value (scan, nothing to redact);
- with NER on (Presidio + spaCy, when the `privacy-ner` extra is installed): first crossing.

Part 2, over real HTTP (loopback): the stub upstream (bench/stub_upstream.py) behind two
`tierwise serve` processes, privacy OFF and ON (`pii: redact`, NER off), both routing to a
`locality: remote` model, asked one request at a time, alternating request by request between
the two: p50 latency for a short request and for the 2,000-token request, and the difference
ON - OFF per round; and each gateway process's CPU time per request (from /proc, all threads). Run it under `nice`; it is a shared machine.

    nice -n 5 python bench/privacy_boundary.py --rounds 6 --n 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tierwise.canonical import (  # noqa: E402
    Message,
    Request,
    Response,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)

VALUES = ["Jane Doe", "jane.doe@example.com", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
          "536-22-8147", "+46 70 123 45 67", "203.0.113.45", "bob.stone@corp.example", "+44 20 7946 0958",
          "5500 0000 0000 0004", "GB82 WEST 1234 5698 7654 32", "198.51.100.7", "AB 12 34 56 C",
          "ops@example.org", "+49 30 901820", "10.1.2.3"]
WORDS = ("the account holder asked about a refund for the order and wants it sent today please check "
         "whether the previous payment went through and confirm the new delivery address").split()


def filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def big_request(with_values: bool = True) -> Request:
    rng = random.Random(7)
    vals = iter(VALUES * 2)

    def para(n: int, k: int) -> str:
        parts = []
        for _ in range(k):
            parts.append(filler(rng, n // k))
            if with_values:
                parts.append(next(vals))
        return " ".join(parts)

    msgs = [
        Message("user", [TextBlock(para(260, 3))]),
        Message("assistant", [TextBlock(para(200, 2)), ToolUseBlock("t1", "lookup", {"query": para(30, 1)})]),
        Message("user", [ToolResultBlock("t1", [TextBlock(para(300, 4))])]),
        Message("assistant", [TextBlock(para(220, 2))]),
        Message("user", [TextBlock(para(260, 3))]),
        Message("assistant", [TextBlock(para(150, 1))]),
        Message("user", [TextBlock(para(120, 1))]),
    ]
    return Request(model="frontier", messages=msgs, system=[TextBlock(para(160, 1))], max_tokens=500,
                   tools=[Tool("lookup", "Look up an account", {"type": "object", "properties": {}})])


def answer_for(out: Request) -> Response:
    import re
    ph = sorted(set(re.findall(r"<[A-Z_]+_\d+>", json.dumps([str(m.content) for m in out.messages]))))
    return Response(id="r", model="m", content=[TextBlock("Confirmed: " + " ".join(ph) + " " + "ok " * 60)])


# Part 1 counts the CPU time of this thread (what the boundary costs, not how long a loaded
# machine took to schedule it); `--wall` counts elapsed time instead.
TIMER = time.thread_time


def med(fn: Any, number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat, timer=TIMER)) / number


# ---------------------------------------------------------------------------- part 1


def part1(rounds: int) -> dict[str, float]:
    from tierwise.config import parse_config
    from tierwise.gateway import Gateway
    from tierwise.policies.base import Context
    from tierwise.privacy.boundary import Boundary, Guard
    from tierwise.tokens import estimate_request
    from tierwise.trace import Trace

    base = """
providers:
  cloud: {kind: anthropic, base_url: "http://127.0.0.1:9", locality: remote}
models:
  frontier: {provider: cloud, model: big}
ledger: {enabled: false}
"""
    gw_off = Gateway(parse_config(base))
    dep = gw_off.deployments["frontier"]

    canned = (b'{"id":"m1","type":"message","role":"assistant","model":"big","content":[{"type":"text",'
              b'"text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":1}}')

    async def fake_post(url: str, body: bytes, headers: Any) -> Any:
        import orjson
        return orjson.loads(canned), canned

    dep.provider.post_json = fake_post  # type: ignore[method-assign]
    req = big_request()
    clean = big_request(with_values=False)
    tokens = estimate_request(req)
    loop = asyncio.new_event_loop()

    def ctx() -> Context:
        return Context(Trace("req_bench", "main"), gw_off.resolve)

    c0 = ctx()

    short = Request(model="frontier", messages=[Message("user", [TextBlock("Say hello.")])], max_tokens=50)

    def off_call() -> None:
        c0.trace.steps.clear()
        loop.run_until_complete(dep.complete(short, c0))

    check = None
    off_test = statistics.median(timeit.repeat("d.privacy is not None and check is None",
                                               globals={"d": dep, "check": check}, number=1_000_000, repeat=7))
    empty = statistics.median(timeit.repeat("pass", number=1_000_000, repeat=7))

    on_cfg = parse_config(base + "privacy: {ner: {enabled: false}, classes: {pii: {}}, policy: {pii: redact}}\n")
    b = Boundary(on_cfg.privacy)
    body_codec = dep.codec

    def crossing(g: Guard, r: Request, c: Context) -> None:
        out, p, check = g.outgoing(dep, r, c)
        import orjson
        check(orjson.dumps(body_codec.encode_request(out, "big")))
        if p is not None:
            from tierwise.privacy.redact_canonical import restore_response
            restore_response(answer_for(out), p)

    def clear_findings(bd: Any) -> None:  # texts never seen (the per-client findings cache, where the tree has one)
        cache = getattr(bd, "findings_cache", None)
        if cache is not None:
            cache._entries.clear()

    def first() -> None:
        clear_findings(b)
        c = ctx()
        crossing(Guard(b, "main"), req, c)

    def again() -> None:  # the same texts in a new request of the same client (a coding agent's next turn)
        crossing(Guard(b, "main"), req, ctx())

    warm_guard = Guard(b, "main")
    warm_ctx = ctx()
    crossing(warm_guard, req, warm_ctx)

    def warm() -> None:
        warm_ctx.trace.steps.clear()
        crossing(warm_guard, req, warm_ctx)

    def first_clean() -> None:
        clear_findings(b)
        crossing(Guard(b, "main"), clean, ctx())

    def first_cold() -> None:  # phone validity is cached per candidate string: as if never seen
        from tierwise.privacy.recognizers import contact

        contact._valid_in.cache_clear()
        contact._possible_in.cache_clear()
        b.junction_cache.clear()  # the junctions between texts (split values) too: a new conversation
        first()

    def encode_only() -> None:  # what any remote call pays anyway: the body's encoding
        import orjson
        orjson.dumps(body_codec.encode_request(req, "big"))

    res: dict[str, list[float]] = {k: [] for k in ("off_call", "first", "first_cold", "again", "warm", "clean",
                                                "encode")}
    for _ in range(rounds):
        res["off_call"].append(med(off_call, 2000, 5))
        res["first"].append(med(first, 20, 5))
        res["first_cold"].append(med(first_cold, 20, 5))
        res["again"].append(med(again, 20, 5))
        res["warm"].append(med(warm, 20, 5))
        res["clean"].append(med(first_clean, 20, 5))
        res["encode"].append(med(encode_only, 200, 5))
    out = {k: statistics.median(v) * 1e6 for k, v in res.items()}
    out["off_added"] = (off_test - empty) / 1_000_000 * 1e6
    out["tokens"] = tokens
    out["values"] = sum(len(f) for f in [warm_guard._memo.get(t, []) for t in warm_guard._memo])
    try:
        ner_cfg = parse_config(base + "privacy: {ner: {enabled: true}, classes: {pii: {}}, policy: {pii: redact}}\n")
        bn = Boundary(ner_cfg.privacy)
        crossing(Guard(bn, "main"), req, ctx())  # load the model once

        def first_ner() -> None:
            clear_findings(bn)
            crossing(Guard(bn, "main"), req, ctx())

        def again_ner() -> None:
            crossing(Guard(bn, "main"), req, ctx())

        out["first_ner"] = statistics.median([med(first_ner, 3, 3) for _ in range(max(1, rounds // 2))]) * 1e6
        out["again_ner"] = statistics.median([med(again_ner, 3, 3) for _ in range(max(1, rounds // 2))]) * 1e6
    except Exception as e:  # the extra is optional
        print(f"(NER row skipped: {type(e).__name__}: {e})", file=sys.stderr)
    loop.close()
    return out


# ---------------------------------------------------------------------------- part 2


from gateway_overhead import free_port, wait_port  # noqa: E402 (the same helpers, bench/)


class Proc:
    def __init__(self, cmd: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="bench-privacy-", suffix=".log", delete=False)
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.port = port
        wait_port(port)

    def stop(self) -> None:
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.p.pid, signal.SIGKILL)


def gateway(stub: int, privacy: bool, workdir: Path) -> Proc:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "tierwise.yaml"
    extra = "privacy: {ner: {enabled: false}, classes: {pii: {}}, policy: {pii: redact}}\n" if privacy else ""
    cfg.write_text(f"""
server: {{port: {port}, default_route: frontier}}
ledger: {{path: {workdir / "ledger.db"}}}
providers:
  cloud: {{kind: anthropic, base_url: "http://127.0.0.1:{stub}", locality: remote}}
models:
  frontier: {{provider: cloud, model: stub-model, price: {{input: 3, output: 15}}}}
{extra}""")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return Proc([sys.executable, "-m", "tierwise.cli", "serve", "-c", str(cfg)], port, env)


def anthropic_body(req: Request | None) -> bytes:
    if req is None:
        return json.dumps({"model": "frontier", "max_tokens": 100,
                           "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}).encode()
    from tierwise.wire import anthropic_messages
    body = anthropic_messages.encode_request(req, "frontier")
    return json.dumps(body).encode()


async def alternating(ports: dict[str, int], body: bytes, n: int) -> dict[str, list[float]]:
    """n requests to each gateway, one at a time, alternating gateway every request."""
    import aiohttp

    out: dict[str, list[float]] = {k: [] for k in ports}
    h = {"content-type": "application/json", "x-api-key": "x", "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as s:
        for i in range(n + 20):
            for name in (sorted(ports) if i % 2 else sorted(ports, reverse=True)):
                t0 = time.perf_counter()
                async with s.post(f"http://127.0.0.1:{ports[name]}/v1/messages", data=body, headers=h) as r:
                    await r.read()
                    assert r.status == 200, r.status
                if i >= 20:  # warm-up
                    out[name].append((time.perf_counter() - t0) * 1000)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def part2(rounds: int, n: int) -> dict[str, Any]:
    stub_port = free_port()
    stub = Proc([sys.executable, str(HERE / "stub_upstream.py"), "--port", str(stub_port), "--latency", "0"],
                stub_port)
    tmp = Path(tempfile.mkdtemp(prefix="bench-privacy-"))
    gws = {"off": gateway(stub_port, False, tmp / "off"), "on": gateway(stub_port, True, tmp / "on")}
    bodies = {"short": anthropic_body(None), "2k": anthropic_body(big_request())}
    per: dict[str, dict[str, list[float]]] = {k: {"off": [], "on": []} for k in bodies}
    cpu: dict[str, dict[str, list[float]]] = {k: {"off": [], "on": []} for k in bodies}  # ms per request
    try:
        for _ in range(rounds):
            for kind, body in bodies.items():
                c0 = {name: cpu_seconds(g.p.pid) for name, g in gws.items()}
                lat = asyncio.run(alternating({k: g.port for k, g in gws.items()}, body, n))
                for name, g in gws.items():
                    per[kind][name].append(statistics.median(lat[name]))
                    cpu[kind][name].append((cpu_seconds(g.p.pid) - c0[name]) * 1000 / (n + 20))
    finally:
        for g in gws.values():
            g.stop()
        stub.stop()
    out: dict[str, Any] = {}
    for kind in bodies:
        diffs = [a - b for a, b in zip(per[kind]["on"], per[kind]["off"], strict=True)]
        cdiffs = [a - b for a, b in zip(cpu[kind]["on"], cpu[kind]["off"], strict=True)]
        out[kind] = {"off_p50": statistics.median(per[kind]["off"]), "on_p50": statistics.median(per[kind]["on"]),
                     "diff_p50": statistics.median(diffs), "diffs": diffs,
                     "off_cpu": statistics.median(cpu[kind]["off"]), "on_cpu": statistics.median(cpu[kind]["on"]),
                     "diff_cpu": statistics.median(cdiffs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--n", type=int, default=200, help="requests per gateway per round (part 2)")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--wall", action="store_true", help="part 1 in elapsed time instead of CPU time")
    a = ap.parse_args()
    global TIMER
    if a.wall:
        TIMER = time.perf_counter
    p1 = part1(a.rounds)
    print(f"## part 1: per model call, in process (µs of {'elapsed' if a.wall else 'CPU'} time, median of rounds)")
    print(f"request: ~{p1['tokens']} tokens, {p1['values']} findings\n")
    print("| case | µs |\n|---|---:|")
    print(f"| privacy off: the seam's test in Deployment.complete (added to a call) | {p1['off_added']:.3f} |")
    print(f"| (for scale: a whole Deployment.complete, HTTP exchange replaced by a canned answer) "
          f"| {p1['off_call']:.1f} |")
    print(f"| redact, first crossing (scan + policy + redact + leak check + restore) | {p1['first']:.0f} |")
    print(f"| same, phone-validity and junction caches cleared (a conversation never seen before) "
          f"| {p1['first_cold']:.0f} |")
    print(f"| redact, the same texts in the client's next request (findings cache) | {p1['again']:.0f} |")
    print(f"| redact, warm crossing (same request, next remote call) | {p1['warm']:.0f} |")
    print(f"| no sensitive value in the request, first crossing | {p1['clean']:.0f} |")
    print(f"| (for scale: encoding the body, paid by every remote call anyway) | {p1['encode']:.0f} |")
    if "first_ner" in p1:
        print(f"| redact with NER (Presidio + spaCy en_core_web_sm), first crossing | {p1['first_ner']:.0f} |")
        print(f"| the same with NER, the client's next request (findings cache) | {p1['again_ner']:.0f} |")
    if a.skip_http:
        return
    p2 = part2(a.rounds, a.n)
    print("\n## part 2: over HTTP, privacy ON vs OFF, one request at a time (ms)\n")
    print("| request | OFF p50 | ON p50 | ON - OFF (median of rounds) | per round | gateway CPU ms/request OFF | ON "
          "| ON - OFF |\n|---|---:|---:|---:|---|---:|---:|---:|")
    for kind, v in p2.items():
        print(f"| {kind} | {v['off_p50']:.3f} | {v['on_p50']:.3f} | {v['diff_p50']:+.3f} | "
              f"{', '.join(f'{d:+.3f}' for d in v['diffs'])} | {v['off_cpu']:.3f} | {v['on_cpu']:.3f} | "
              f"{v['diff_cpu']:+.3f} |")


if __name__ == "__main__":
    main()
