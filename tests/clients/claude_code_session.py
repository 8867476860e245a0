"""A scripted Claude Code session that exercises every kind of request the CLI sends.

The script plays the model. Claude Code's main agent is asked (marker TIERWISE-MAIN) to fetch a
page with WebFetch (Claude Code then asks its small model to summarise the page), run a subagent
through its Task/Agent tool (marker TIERWISE-SUBAGENT), run a Bash command, and finish. A second
run resumes the session with `/compact`, which makes Claude Code ask for a conversation summary.
Claude Code also generates a session title, may check its quota and counts tokens on its own.

The script recognises its *own* markers only (never Claude Code's prompts), so it drives the
session the same way whatever the CLI sends; what the CLI sends is what the capture records.

Run `python -m tests.clients.claude_code_session` to record a fresh set of transcripts under
tests/clients/transcripts/ (see tests/clients/transcripts/README.md).
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.clients.anthropic_scripted import (
    Captured,
    Reply,
    ScriptedAnthropicUpstream,
    text_reply,
    tool_reply,
)

MAIN_MARK = "TIERWISE-MAIN"
SUB_MARK = "TIERWISE-SUBAGENT"
DONE_TEXT = "TIERWISE-DONE: fetched, delegated and counted."
SUB_TEXT = "TIERWISE-SUBAGENT-DONE: hello from the subagent."
PAGE_PATH = "/page.html"
PAGE_HTML = ("<html><head><title>Tierwise page</title></head><body><h1>Tierwise</h1>"
             "<p>The page says the tide is high. " + "Filler sentence for length. " * 40 + "</p></body></html>")
TASK = (f"{MAIN_MARK} Please do three things: fetch the page at PAGE_URL and tell me what it says, "
        "ask a subagent to say hello, and run a shell command that prints numbers.")
COMPACT_SUMMARY = "<summary>TIERWISE-SUMMARY: the user fetched a page, used a subagent and ran seq.</summary>"
SIDE_TEXT = "TIERWISE-SIDE: scripted side answer."
TITLE_JSON = '{"title": "Fetch page and delegate"}'
CLI_TIMEOUT_S = 300  # a hang must fail, not stall the suite; no performance threshold


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for b in content or []:
        if not isinstance(b, dict):
            continue
        if b.get("type") == "text":
            out.append(str(b.get("text", "")))
        elif b.get("type") == "tool_result":
            out.extend(_texts(b.get("content")))
    return out


def all_text(body: dict[str, Any]) -> str:
    return "\n".join(t for m in body.get("messages") or [] for t in _texts(m.get("content")))


def first_user_text(body: dict[str, Any]) -> str:
    for m in body.get("messages") or []:
        if m.get("role") == "user":
            return "\n".join(_texts(m.get("content")))
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            return "\n".join(_texts(m.get("content")))
    return ""


def tool_names(body: dict[str, Any]) -> list[str]:
    return [str(t.get("name", "")) for t in body.get("tools") or []]


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for m in body.get("messages") or [] if isinstance(m.get("content"), list)
            for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


@dataclass
class SessionScript:
    """Decides the answer to each request of the scripted session (see the module docstring)."""

    page_url: str
    big_usage_at: int | None = None  # main step at which to report a near-full window (auto-compact)
    step: int = 0

    def decide(self, cap: Captured) -> Reply:
        body = cap.body
        first = first_user_text(body)
        last = last_user_text(body)
        if re.search(r"summary of the conversation", last, re.I):
            return {**text_reply(COMPACT_SUMMARY), "label": "compact"}
        if SUB_MARK in first and body.get("tools"):
            return {**text_reply(SUB_TEXT), "label": "subagent"}
        if body.get("tools") and "Bash" in tool_names(body):
            return self._main(body)
        if (body.get("output_config") or {}).get("format"):
            return {**text_reply(TITLE_JSON), "label": "structured"}
        return {**text_reply(SIDE_TEXT), "label": "side"}

    def _main(self, body: dict[str, Any]) -> Reply:
        # The script keeps its own place: after a compaction the old tool results are gone.
        names = tool_names(body)
        agent_tool = "Task" if "Task" in names else "Agent"
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("toolu_fetch_1", "WebFetch", {"url": self.page_url, "prompt": "What does the page say about the tide?"}),
            ("toolu_agent_1", agent_tool, {"description": "Say hello", "subagent_type": "general-purpose",
                                           "prompt": f"{SUB_MARK} reply with a short hello and nothing else."}),
            ("toolu_bash_1", "Bash", {"command": "seq 1 3", "description": "Print three numbers"}),
        ]
        if self.step < len(steps):
            tid, name, args = steps[self.step]
            usage = {"input_tokens": 190_000} if self.big_usage_at == self.step else {}
            self.step += 1
            return {**tool_reply(tid, name, args, **usage), "label": f"main:{name}"}
        return {**text_reply(DONE_TEXT), "label": "main:final"}


def cli_env(home: Path, base_url: str, *, ca_cert: Path | None = None) -> dict[str, str]:
    """A clean environment: no real keys or user config leak in, nothing leaves loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "OPENAI_"))}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    })
    if ca_cert is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca_cert)
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    # WebFetch asks claude.ai whether a domain is allowed before fetching: there is no network here.
    settings.write_text(json.dumps({"skipWebFetchPreflight": True}))
    return env


ALLOWED = "WebFetch,Task,Agent,Bash(seq:*),Bash"


def run_session(claude: str, workdir: Path, env: dict[str, str],
                page_url: str) -> list[subprocess.CompletedProcess[str]]:
    """The main run (print mode, tools allowed) and a second run that compacts the same session."""
    first = subprocess.run([claude, "-p", TASK.replace("PAGE_URL", page_url), "--allowedTools", ALLOWED,
                            "--permission-mode", "acceptEdits"], cwd=workdir, env=env, capture_output=True,
                           text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    second = subprocess.run([claude, "-p", "/compact", "--continue"], cwd=workdir, env=env, capture_output=True,
                            text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    return [first, second]


def run_interactive(claude: str, workdir: Path, env: dict[str, str], page_url: str,
                    up: ScriptedAnthropicUpstream, timeout: float = CLI_TIMEOUT_S) -> str:
    """The same session in the interactive TUI, driven through a pseudo-terminal (capture only).

    Each step waits for the upstream to have answered the request it leads to, not for a time."""
    import pty
    import select
    import time

    home = Path(env["HOME"])
    key = env["ANTHROPIC_API_KEY"]
    # Skip the first-run screens: onboarding, "use this API key?", "trust this folder?".
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []},
        "projects": {str(workdir): {"hasTrustDialogAccepted": True}}}))
    env = {**env, "TERM": "xterm-256color"}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(workdir)
        os.execve(claude, [claude, "--allowedTools", ALLOWED], env)
    out = bytearray()

    def pump_until(done: Any, limit: float = timeout) -> None:
        end = time.monotonic() + limit
        while not done() and time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    out.extend(os.read(fd, 65536))
                except OSError:
                    return

    def typed(text: str) -> None:
        for ch in text:  # keystroke by keystroke, reading the screen in between
            os.write(fd, ch.encode())
            pump_until(lambda: False, limit=0.01)
        pump_until(lambda: False, limit=0.5)
        os.write(fd, b"\r")

    def answered(label: str) -> Any:
        return lambda: any(c.answered == label for c in up.messages())

    try:
        pump_until(lambda: "\u276f".encode() in out)  # the input prompt (❯) is drawn
        pump_until(lambda: False, limit=3)  # and the TUI has settled (capture only, not a test)
        typed(TASK.replace("PAGE_URL", page_url))
        pump_until(answered("main:final"))
        typed("/compact")
        pump_until(answered("compact"))
        typed("/exit")
        pump_until(lambda: False, limit=5)  # let it save the session; it is killed below anyway
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    return re.sub(r"\x1b\[[0-9;?<>]*[a-zA-Z]", "", out.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------- capture to disk

HEADER_KEEP = ("anthropic-beta", "anthropic-version", "x-app", "user-agent", "x-claude-code-agent-id",
               "x-claude-code-parent-agent-id", "x-stainless-retry-count", "x-stainless-timeout", "content-type")


LONG = 1500


def scrub(value: Any, replacements: list[tuple[str, str]]) -> Any:
    """Remove machine-specific strings (paths, ports, ids, dates) from every string of a captured value."""
    if isinstance(value, dict):
        return {k: ("<user-id>" if k == "user_id" else scrub(v, replacements)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, replacements) for v in value]
    if not isinstance(value, str):
        return value
    for old, new in replacements:
        value = value.replace(old, new)
    if len(value) > LONG:  # Claude Code's long prompts: keep the head and tail, where its markers sit
        value = value[:1200] + f" [... {len(value) - 1400} characters cut by the capture ...] " + value[-200:]
    value = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", value)
    return re.sub(r"\b\d{4}-\d{2}-\d{2}\b", "<date>", value)


def shape(cap: Captured, replacements: list[tuple[str, str]]) -> dict[str, Any]:
    headers = {k: v for k, v in cap.headers.items() if k in HEADER_KEEP or k.startswith("x-claude-code")}
    return scrub({"method": cap.method, "path": cap.path, "query": cap.query, "answered": cap.answered,
                  "headers": headers, "body": cap.body}, replacements)


# Capture modes: extra environment for the CLI.
MODES: dict[str, dict[str, str]] = {
    "default": {},
    # with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC unset ("" removes a variable)
    "nonessential": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": ""},
    # what `tierwise claude --haiku-model ... --subagent-model ...` sets
    "named_models": {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "tierwise-haiku", "CLAUDE_CODE_SUBAGENT_MODEL": "tierwise-sub",
                     "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": ""},
    # a small window plus a reported near-full prompt makes Claude Code compact on its own
    "autocompact": {"CLAUDE_CODE_AUTO_COMPACT_WINDOW": "100000"},
    # the interactive TUI through a pseudo-terminal, non-essential traffic allowed
    "interactive": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": ""},
}


def main() -> None:  # pragma: no cover - a recording tool, run by hand
    import tempfile

    from tests.clients.test_claude_code import find_claude

    claude = find_claude()
    if claude is None:
        sys.exit("install the CLI first: scripts/install-claude-code.sh")
    version = subprocess.run([claude, "--version"], capture_output=True, text=True).stdout.split()[0]
    out = Path(__file__).parent / "transcripts" / f"claude_code_{version}"
    out.mkdir(parents=True, exist_ok=True)
    for mode in sys.argv[1:] or MODES:
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp).resolve()
            (t / "project").mkdir()
            script = SessionScript(page_url="", big_usage_at=1 if mode == "autocompact" else None)
            up = ScriptedAnthropicUpstream(script.decide, pages={PAGE_PATH: PAGE_HTML}, tls_dir=t / "tls").start()
            script.page_url = up.https_url + PAGE_PATH
            try:
                env = cli_env(t / "home", up.url, ca_cert=up.cert)
                env.update(MODES[mode])
                env = {k: v for k, v in env.items() if v != ""}
                if mode == "interactive":
                    run_interactive(claude, t / "project", env, script.page_url, up)
                    procs = []
                else:
                    procs = run_session(claude, t / "project", env, script.page_url)
            finally:
                up.stop()
            reps = [(str(t), "<tmp>"), (up.url, "http://127.0.0.1:<port>"), (up.https_url, "https://127.0.0.1:<port>"),
                    (os.environ.get("USER", "root") + "@", "<user>@"),
                    (platform.release(), "<kernel-release>"), (socket.gethostname(), "<host>")]
            records = [shape(c, reps) for c in up.requests]
            (out / f"session_{mode}.json").write_text(json.dumps({
                "cli_version": version, "mode": mode, "exit_codes": [p.returncode for p in procs],
                "requests": records}, indent=1) + "\n")
            print(mode, [p.returncode for p in procs], [(r["path"], r["answered"], r["body"].get("model")
                                                          if isinstance(r["body"], dict) else None) for r in records])
            for p in procs:
                if p.returncode:
                    print(p.stdout[-1500:], p.stderr[-1500:])


if __name__ == "__main__":  # pragma: no cover
    main()
