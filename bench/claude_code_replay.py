"""Replay Claude Code's captured requests (tests/clients/transcripts/) through a running gateway, one after another,
and print each one's status, tool count and wall time: how a coding agent's turns fare through a route (the
privacy boundary's scan, a route's rules). Non-streamed, the captured headers that identify Claude Code kept.

    python bench/claude_code_replay.py --port 4012 [--session session_nonessential.json]

The gateway is yours (e.g. `tierwise serve -c` a config with `privacy: {policy: {pii: redact}}` and a remote
model on a double); nothing here starts one.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "tests" / "clients" / "transcripts" / "claude_code_2.1.197"
KEPT = ("anthropic-version", "anthropic-beta", "x-app", "user-agent", "x-claude-code-session-id",
        "x-claude-code-agent-id")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--session", default="session_nonessential.json")
    a = ap.parse_args()
    session = json.loads((CAPTURES / a.session).read_text())
    for i, r in enumerate(session["requests"]):
        if r["path"] != "/v1/messages":
            continue
        headers = {k: v for k, v in r["headers"].items() if k.lower() in KEPT}
        headers["content-type"] = "application/json"
        body = {**r["body"], "stream": False}
        req = urllib.request.Request(f"http://127.0.0.1:{a.port}/v1/messages", data=json.dumps(body).encode(),
                                     headers=headers)
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310 (loopback)
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        print(f"{i}\t{status}\t{len(body.get('tools') or [])} tools\t{(time.perf_counter() - t) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
