"""`tierwise serve`'s start line names every API a client can point at it: a Codex user (Codex speaks only the
Responses API to a custom provider) read "OpenAI: /v1/chat/completions, Anthropic: /v1/messages" and could not
tell that `/v1/responses` is served (session 35, newuser35)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_new_user import serve_lines

CONFIG = """\
providers:
  llama: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}
models:
  local: {provider: llama, model: tiny}
routes:
  main: [local]
"""


def test_the_start_line_names_the_responses_api(tmp_path: Path) -> None:
    lines = serve_lines(tmp_path, CONFIG)
    line = lines[-1] if lines else ""
    assert "serving on" in line, lines
    for api in ("/v1/chat/completions", "/v1/responses", "/v1/messages"):
        assert api in line, line
