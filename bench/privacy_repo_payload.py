"""Privacy round 15 (privacy15): the privacy scan of a repository-sized payload — the repository's own text (src/,
then bench/RESULTS.md) as one Anthropic text document (base64) or one tool result, `Guard.scan_request` on the
decoded request under a secrets-only section (examples/claude-code.yaml's), CPU seconds per size.

    PYTHONPATH=src .venv/bin/python bench/privacy_repo_payload.py [--as document|tool_result] [--sizes 250000,1000000,2000000]
"""

from __future__ import annotations

import argparse
import base64
import glob
import time

from tierwise.privacy.boundary import Boundary, Guard
from tierwise.privacy.policy_config import PrivacyConfig
from tierwise.wire.anthropic_messages.request_decode import decode_request


def repo_text(n: int) -> str:
    text = ""
    for f in sorted(glob.glob("src/tierwise/**/*.py", recursive=True)) + ["bench/RESULTS.md"]:
        with open(f, encoding="utf-8") as fh:
            text += f"==> {f} <==\n" + fh.read()
        if len(text) >= n:
            break
    return text[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--as", dest="shape", choices=["document", "tool_result"], default="document")
    ap.add_argument("--sizes", default="250000,1000000,2000000")
    a = ap.parse_args()
    b = Boundary(PrivacyConfig.model_validate({"classes": {"secrets": {}}, "policy": {"secrets": "redact"}}))
    for n in map(int, a.sizes.split(",")):
        text = repo_text(n)
        if a.shape == "document":
            content = [{"type": "document", "source": {"type": "base64", "media_type": "text/plain",
                                                       "data": base64.b64encode(text.encode()).decode()}},
                       {"type": "text", "text": "Review this."}]
            msgs = [{"role": "user", "content": content}]
        else:
            msgs = [{"role": "user", "content": "show me the repository"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "Bash",
                                                       "input": {"command": "cat $(git ls-files)"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": text}]}]
        req = decode_request({"model": "m", "max_tokens": 5, "messages": msgs}, {"anthropic-version": "2023-06-01"})
        t = time.process_time()
        found = Guard(b, "main").scan_request(req)
        print(f"{a.shape} {n:>9,} chars: scan {time.process_time() - t:7.2f} s CPU, findings {dict(found)}", flush=True)


if __name__ == "__main__":
    main()
