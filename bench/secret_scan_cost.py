"""Cost of the SECRET recognizer over Claude Code's recorded turns plus a `.env` file as its Read tool returns it.

Compare two checkouts by their `src`: `PYTHONPATH=<checkout>/src .venv/bin/python bench/secret_scan_cost.py`.
Prints the best of 5 repeats of 20 passes over every text of the captured requests (iter_texts: what the
privacy boundary scans).
"""

from __future__ import annotations

import json
import timeit
from pathlib import Path

from tierwise.privacy.recognizers.secrets import SecretRecognizer
from tierwise.privacy.request_scan import iter_texts
from tierwise.wire.anthropic_messages.request_decode import decode_request

CAPTURES = Path(__file__).resolve().parents[1] / "tests" / "clients" / "transcripts" / "claude_code_2.1.197"
ENV_FILE = "".join(f"{i}\t{k}={v}\n" for i, (k, v) in enumerate([
    ("OPENAI_API_KEY", "sk-live-abcdefghijklmnopqrstuvwxyz0123456789ABCD"),
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    ("DB_PASSWORD", "hunter2hunter2"),
    ("DEBUG", "true"),
    ("PORT", "8080"),
], 1))


def main() -> None:
    texts: list[str] = []
    for name in ("session_interactive.json", "session_nonessential.json"):
        for r in json.loads((CAPTURES / name).read_text())["requests"]:
            if isinstance(r["body"], dict) and r["path"] == "/v1/messages":
                texts += [t for _, t in iter_texts(decode_request(r["body"], {}))]
    texts.append(ENV_FILE * 20)
    rec = SecretRecognizer()
    chars = sum(map(len, texts))
    n = 20
    best = min(timeit.repeat(lambda: [list(rec.find(t)) for t in texts], number=n, repeat=5)) / n
    print(f"{len(texts)} texts, {chars} chars: {best * 1e3:.3f} ms per pass ({best / chars * 1e9:.1f} ns/char)")


if __name__ == "__main__":
    main()
