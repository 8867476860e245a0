"""CPU instructions per round of the wire codecs' request-path work, counted by callgrind (a count,
so the machine's load does not change it), for this tree and another one.

A round decodes an agent-shaped request of each client API (Chat Completions, Messages, Responses:
text and image parts, tool calls and their results, tools, tool choices), encodes each for an
upstream of the other family, encodes a whole answer with a tool call, and streams a 20-delta
answer to a Chat and a Messages client. `--workload conversation` instead decodes a Messages request
shaped like a coding agent's (200 turns of text, tool_use and tool_result blocks). The figure is the difference between a long and a short
run divided by the rounds between them, so start-up and imports cancel out.

    .venv/bin/python bench/wire_codec_instructions.py --baseline-src /path/to/other/src [--rounds 300]
        [--workload conversation]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG = "data:image/png;base64," + "iVBORw0KGgo" * 20
TOOLS = [{"name": f"tool_{i}", "description": "a tool", "parameters": {"type": "object", "properties": {
    "path": {"type": "string"}}, "required": ["path"]}} for i in range(3)]

CHAT = {"model": "m", "max_tokens": 512, "tool_choice": "auto", "parallel_tool_calls": False,
        "tools": [{"type": "function", "function": t} for t in TOOLS], "messages": [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": [{"type": "text", "text": "Fix the bug in this screenshot."},
                                         {"type": "image_url", "image_url": {"url": IMG, "detail": "low"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{i}", "type": "function", "function": {"name": "tool_0", "arguments": '{"path": "a.py"}'}}
                for i in range(2)]},
            {"role": "tool", "tool_call_id": "call_0", "content": "def f():\n    return 1\n"},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": "Now run the tests."}]}
MESSAGES = {"model": "m", "max_tokens": 512, "system": "You are a coding agent.",
            "tool_choice": {"type": "auto"},
            "tools": [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
                      for t in TOOLS], "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Fix the bug in this screenshot."},
                                             {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                          "data": IMG[22:]}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{i}", "name": "tool_0",
                                                   "input": {"path": "a.py"}} for i in range(2)]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_0", "content": "def f():\n    return 1\n"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "ok"}]},
                    {"type": "text", "text": "Now run the tests."}]}]}
RESPONSES = {"model": "m", "max_output_tokens": 512, "instructions": "You are a coding agent.",
             "tool_choice": "required", "parallel_tool_calls": False, "store": False,
             "tools": [{"type": "function", **t} for t in TOOLS], "input": [
                 {"role": "user", "content": [{"type": "input_text", "text": "Fix the bug in this screenshot."},
                                              {"type": "input_image", "image_url": IMG, "detail": "low"}]},
                 *({"type": "function_call", "call_id": f"call_{i}", "name": "tool_0",
                    "arguments": '{"path": "a.py"}'} for i in range(2)),
                 {"type": "function_call_output", "call_id": "call_0", "output": "def f():\n    return 1\n"},
                 {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "ok"}]},
                 {"role": "user", "content": "Now run the tests."}]}


def conversation() -> dict:
    msgs: list[dict] = [{"role": "user", "content": "Fix the failing test."}]
    for i in range(100):
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, {
            "type": "tool_use", "id": f"toolu_{i}", "name": "Read", "input": {"file_path": "/src/a.py"}}]})
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": [
            {"type": "text", "text": "x" * 200}]}, {"type": "text", "text": "go on"}]})
    return {"model": "m", "max_tokens": 1000, "system": [{"type": "text", "text": "You are Claude Code."}],
            "tools": MESSAGES["tools"], "messages": msgs}


def run(rounds: int, workload: str) -> None:
    from tierwise import canonical as c
    from tierwise.wire import anthropic_messages as am
    from tierwise.wire import openai_chat as oc
    from tierwise.wire import openai_responses as orsp

    answer = c.Response(id="x", model="m", content=[c.TextBlock("Running them."),
                                                    c.ToolUseBlock("call_9", "tool_1", {"path": "tests"})],
                        stop_reason="tool_use", usage=c.Usage(100, 20, 50, 0))
    events = [c.MessageStart("x", "m", c.Usage(100, 1, 50, 10)), c.BlockStart(0, c.TextBlock("")),
              *(c.BlockDelta(0, "text", f"tok{i} ") for i in range(20)), c.BlockStop(0),
              c.MessageDelta("end_turn", c.Usage(100, 20, 50, 10)), c.MessageStop()]
    headers: dict[str, str] = {}
    if workload == "conversation":
        body = conversation()
        for _ in range(rounds):
            am.decode_request(body, headers)
        return
    for _ in range(rounds):
        chat = oc.decode_request(CHAT, headers)
        msgs = am.decode_request(MESSAGES, headers)
        resp = orsp.decode_request(RESPONSES, headers)
        am.encode_request(chat, "up")
        oc.encode_request(msgs, "up")
        oc.encode_request(resp, "up")
        oc.encode_response(answer, "m")
        for enc in (oc.StreamEncoder("m", chat), am.StreamEncoder("m", msgs)):
            for ev in events:
                enc.encode(ev)


def count(src: Path, rounds: int, workload: str) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          __file__, "--run", str(rounds), "--workload", workload], env=dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0"),
                         capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=300, help="rounds between the short and the long run")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="tree A's src/ (default: this checkout's)")
    ap.add_argument("--baseline-src", type=Path, required=False, help="tree B's src/")
    ap.add_argument("--workload", choices=("round", "conversation"), default="round")
    a = ap.parse_args()
    if a.run is not None:
        return run(a.run, a.workload)
    trees = {"A": a.src.resolve(), **({"B": a.baseline_src.resolve()} if a.baseline_src else {})}
    per = {}
    for label, src in trees.items():
        short, long = count(src, 50, a.workload), count(src, 50 + a.rounds, a.workload)
        per[label] = (long - short) / a.rounds
        print(f"{label} {src}: {per[label]:,.0f} instructions per round", flush=True)
    if "B" in per:
        print(f"A/B: {per['A'] / per['B']:.4f} ({per['A'] - per['B']:+,.0f} instructions per round)")


if __name__ == "__main__":
    main()
