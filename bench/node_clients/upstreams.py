"""Upstreams for trying third-party clients against a gateway by hand (not a test; see README.md here).

Starts an Anthropic double (the frontier tier), an OpenAI double (a local server that follows tools and
JSON Schema formats) and, when scripts/install-llama-server.sh has run, llama-server with the tests' tiny GGUF
model; writes their URLs to RUN_DIR/urls.json and runs until killed. The doubles answer from the request:
a prompt holding FAIL429 / FAIL529 / FAIL400 gets that error, SLOWLY a 60-word stream at 0.3 s a word,
tools a call of the first tool, a response format JSON shaped by its schema (the OpenAI double only reads
`response_format`; the Anthropic one `output_config.format`), a tool result a closing sentence.

    .venv/bin/python bench/node_clients/upstreams.py /tmp/run
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.doubles import AnthropicDouble, Fail, OpenAIDouble, Reply, SlowStream, ToolCall  # noqa: E402
from tests.harness import free_port  # noqa: E402


def shaped(schema: Any) -> Any:
    """A value of the JSON Schema's shape (enough for zod schemas of objects, arrays and scalars)."""
    if not isinstance(schema, dict):
        return "text"
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if "enum" in schema:
        return schema["enum"][0]
    if t == "object" or "properties" in schema:
        return {k: shaped(v) for k, v in schema.get("properties", {}).items()}
    return {"array": lambda: [shaped(schema.get("items"))], "number": lambda: 1.5, "integer": lambda: 2,
            "boolean": lambda: True}.get(t, lambda: "text")()


def answer(rec: Any) -> Any:
    b = rec.body or {}
    s = json.dumps(b)
    for word, item in (("FAIL429", Fail(429, retry_after=1)), ("FAIL529", Fail(529)), ("FAIL400", Fail(400))):
        if word in s:
            return item
    if "SLOWLY" in s:
        return SlowStream(0.3, Reply(text=" ".join(f"w{i}" for i in range(60))))
    fmt = ((b.get("response_format") or {}).get("json_schema") or {}).get("schema") \
        or ((b.get("output_config") or {}).get("format") or {}).get("schema")
    if fmt:
        return Reply(text=json.dumps(shaped(fmt)))
    msgs = b.get("messages") or [{}]
    last = msgs[-1]
    answered = last.get("role") == "tool" or (isinstance(last.get("content"), list) and any(
        isinstance(c, dict) and c.get("type") == "tool_result" for c in last["content"]))
    tools = b.get("tools") or []
    if tools and not answered:
        t = tools[0]
        fn = t.get("function", t)
        return Reply(tool_calls=[ToolCall(fn["name"], shaped(t.get("input_schema") or fn.get("parameters")))])
    return Reply(text="The tool said it; done." if answered else "Hello from the double, friend.")


def main(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    frontier, local = AnthropicDouble(), OpenAIDouble()
    for d in (frontier, local):
        d.default = answer
        d.start()
    urls = {"frontier": frontier.url, "smart": local.url}
    llama = None
    binary = REPO / ".tools" / "llama" / "server"
    if binary.exists():
        from tests.engines.tiny_gguf import CONTEXT, write_tiny_model
        model = write_tiny_model(run / "tiny.gguf")
        port = free_port()
        llama = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port), "-m", str(model), "--jinja", "-c", str(CONTEXT),
             "-np", "1", "--no-webui", "-dev", "none", "-t", "1"],
            stdout=(run / "llama.log").open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        urls["llama"] = f"http://127.0.0.1:{port}"
    (run / "urls.json").write_text(json.dumps(urls))
    print(json.dumps(urls), flush=True)

    def stop(*_: Any) -> None:
        if llama is not None:
            llama.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
