"""`tierwise serve`'s start line names every API a client can point at it: a Codex user (Codex speaks only the
Responses API to a custom provider) read "OpenAI: /v1/chat/completions, Anthropic: /v1/messages" and could not
tell that `/v1/responses` is served (session 35, newuser35)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = """\
providers:
  llama: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}
models:
  local: {provider: llama, model: tiny}
routes:
  main: [local]
"""


def test_the_start_line_names_the_responses_api(tmp_path: Path) -> None:
    (tmp_path / "tierwise.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "TIERWISE_CONFIG"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        assert proc.stderr is not None
        while (line := proc.stderr.readline()) and "serving on" not in line:
            seen.append(line)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert "serving on" in line, seen
    for api in ("/v1/chat/completions", "/v1/responses", "/v1/messages"):
        assert api in line, line
