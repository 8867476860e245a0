"""Privacy scan of Claude Code's captured main-agent turns, turn by turn, as the gateway scans them
(`Guard.scan_request` on the decoded request, one Boundary for the whole session, one guard per turn).

    PYTHONPATH=src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/privacy_coding_turns.py [--ner on|off] [--profile N]
        [--config examples/claude-code.yaml]   # that file's own privacy section instead of pii+secrets

Prints the Boundary's construction time (model loads), the first turn (cold) and later turns (warm), CPU seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

from tierwise.privacy.boundary import Boundary, Guard
from tierwise.privacy.policy_config import PrivacyConfig
from tierwise.wire.anthropic_messages.request_decode import decode_request

CAPTURE = Path(__file__).resolve().parents[1] / "tests" / "clients" / "transcripts" / "claude_code_2.1.197"


def turns(name: str) -> list[dict]:
    s = json.loads((CAPTURE / name).read_text())
    return [r["body"] for r in s["requests"] if r["path"] == "/v1/messages" and r["body"].get("tools")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ner", choices=["on", "off"], default="on")
    ap.add_argument("--session", default="session_interactive.json")
    ap.add_argument("--config", help="take the privacy section of this tierwise.yaml (--ner is then ignored)")
    ap.add_argument("--profile", type=int, default=0, help="profile the warm turns, print the top N")
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.config:
        import yaml

        cfg = PrivacyConfig.model_validate(yaml.safe_load(Path(a.config).read_text())["privacy"])
    else:
        cfg = PrivacyConfig.model_validate({"classes": {"pii": {}, "secrets": {}}, "ner": {"enabled": a.ner == "on"},
                                            "policy": {"pii": "redact", "secrets": "block"}})
    b = Boundary(cfg)
    start = time.perf_counter() - t0
    bodies = turns(a.session)
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    times = []
    findings = 0
    prof = cProfile.Profile() if a.profile else None
    for i, body in enumerate(bodies):
        req = decode_request(json.loads(json.dumps(body)), dict(headers))
        if prof is not None and i > 0:
            prof.enable()
        t = time.process_time()
        found = Guard(b, "main").scan_request(req)
        findings += sum(found.values())  # entity -> count
        times.append(time.process_time() - t)
        if prof is not None and i > 0:
            prof.disable()
    size = sum(len(json.dumps(x)) for x in bodies) // len(bodies)
    warm = sorted(times[1:])
    print(f"{'config=' + a.config if a.config else 'ner=' + a.ner} ner_layer={b.scan.ner_active} session={a.session}: {len(bodies)} turns, ~{size // 1000} KB each; start-up {start:.2f} s; "
          f"first turn {times[0]:.3f} s; later turns median {warm[len(warm) // 2]:.3f} s, max {warm[-1]:.3f} s, "
          f"total {sum(times):.2f} s CPU; {findings} findings")
    if prof is not None:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(a.profile)


if __name__ == "__main__":
    main()
