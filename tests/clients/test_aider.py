"""The real Aider CLI in architect mode, with the architect on a frontier route and the editor on a
local route, both through the gateway's OpenAI-compatible endpoint.

Aider (PyPI `aider-chat` 0.86.2, installed by `scripts/install-aider.sh` into .tools/aider) is run
as a user would: `aider --architect --model openai/architect --editor-model openai/editor
--message ... --yes-always <file>` in a temporary git repo, with `--openai-api-base` pointing at
the gateway. Aider speaks to it through litellm (Aider's own dependency), so the requests the
gateway sees are the ones a real Aider session sends, streamed. The gateway is built from the
documented config, examples/architect-editor.yaml (see docs/architect-editor.md).

Two tests, because llama-server's tiny hand-made model cannot write a sensible edit:

- `test_architect_on_frontier_and_editor_on_local_edit_and_commit_the_file`: the editor route's
  upstream is a scripted OpenAI-compatible double that answers Aider's editor prompt with a
  SEARCH/REPLACE block. Proves the whole architect/editor split: Aider's architect request (and
  only that) reaches the frontier upstream, its plan is handed to the editor request on the
  local upstream, Aider applies the editor's block to the file and commits it (with a commit
  message from the weak model, also on the local route).
- `test_editor_call_reaches_the_real_llama_server`: the same split with the editor route's
  upstream a real llama.cpp `llama-server`. Proves Aider's real editor prompt (system prompt,
  SEARCH/REPLACE examples, the file) is served by a real local engine through the gateway: the
  ledger shows it on the local route, the engine's own token counters match the ledger row, and
  the engine's reply comes back to Aider. The file is not edited there: the tiny model answers
  every prompt with the same short greeting, which holds no edit block.

Every network call Aider could make besides the gateway (update check, analytics, the litellm
model-price download) is switched off by flags and environment; the proxy variables point at a
loopback trap, and each test asserts the trap saw no connection, so the run is offline.

Without the Aider install these tests skip, except under CI=true where that is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles import OpenAIDouble, RecordedRequest, Reply
from tests.engines import conftest as engines
from tests.engines.conftest import LlamaServer
from tests.engines.tiny_gguf import REPLY as LLAMA_REPLY
from tests.harness import GatewayServer, free_port, make_config, unavailable

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = ROOT / ".tools" / "aider" / "bin" / "aider"
AIDER_TIMEOUT_S = 300  # a hang must fail the test, not the suite; this is no performance threshold

ARCHITECT_ROUTE, EDITOR_ROUTE = "architect", "editor"
FRONTIER_MODEL_ID, LOCAL_MODEL_ID = "frontier-big", "qwen-coder-local"

ORIGINAL = 'def greet(name):\n    return "Hello, " + name\n'
EDITED = 'def greet(name):\n    return f"Hello, {name}, from tierwise!"\n'
TASK = "Make greet() say where the greeting comes from: from tierwise."
PLAN = ("Change the return line of greet() in greet.py so it uses an f-string and says "
        "'Hello, {name}, from tierwise!'. Nothing else changes.")
EDIT_BLOCK = (
    "greet.py\n```python\n<<<<<<< SEARCH\n    return \"Hello, \" + name\n=======\n"
    "    return f\"Hello, {name}, from tierwise!\"\n>>>>>>> REPLACE\n```\n"
)
COMMIT_MESSAGE = "feat: greet from tierwise"
AIDER_KEY, FRONTIER_KEY = "sk-aider-not-a-real-key", "sk-frontier-test-key"
# Aider's editor prompt (system prompt, SEARCH/REPLACE examples, the file) is ~6,000 tokens in the
# tiny model's byte-level vocabulary: more than the 4,096 the shared engine fixture gives a slot.
ROOMY_CONTEXT = 16384


# ---------------------------------------------------------------------------------------- aider


def find_aider() -> str | None:
    explicit = os.environ.get("TIERWISE_AIDER_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return str(INSTALLED) if os.access(INSTALLED, os.X_OK) else None


@pytest.fixture(scope="module")
def aider_bin() -> str:
    exe = find_aider()
    if exe is None:
        unavailable("Aider is not installed (scripts/install-aider.sh, or set TIERWISE_AIDER_BIN)")
    return exe


class ConnectionTrap:
    """A loopback listener that counts connections: the proxy for every non-loopback call Aider
    might try. A count of 0 after a run means nothing tried to leave the machine."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def trap() -> Iterator[ConnectionTrap]:
    t = ConnectionTrap()
    yield t
    t.close()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = (tmp_path / "repo").resolve()
    d.mkdir()
    git(d, "init", "-q", "-b", "main")
    git(d, "config", "user.name", "Test User")
    git(d, "config", "user.email", "test@example.invalid")
    git(d, "config", "commit.gpgsign", "false")
    (d / "greet.py").write_text(ORIGINAL)
    git(d, "add", "greet.py")
    git(d, "commit", "-q", "-m", "initial")
    return d


def aider_env(home: Path, trap: ConnectionTrap) -> dict[str, str]:
    """A clean environment: no real keys or user config leak in, and nothing leaves loopback."""
    drop = ("OPENAI_", "ANTHROPIC_", "AIDER_", "LITELLM_", "GIT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and "proxy" not in k.lower()}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "OPENAI_API_KEY": AIDER_KEY,  # Aider wants one; the gateway holds the real keys
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm would fetch its price map from GitHub
        "HTTP_PROXY": trap.url, "HTTPS_PROXY": trap.url, "ALL_PROXY": trap.url,
        "http_proxy": trap.url, "https_proxy": trap.url, "all_proxy": trap.url,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "TERM": "dumb", "NO_COLOR": "1",
    })
    return env


def model_metadata(path: Path) -> Path:
    """What Aider would otherwise download: context windows for the two route names (in
    litellm's model-info shape), so Aider neither fetches nor warns about unknown models."""
    info = {"max_input_tokens": 32768, "max_output_tokens": 4096, "max_tokens": 4096,
            "input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
            "litellm_provider": "openai", "mode": "chat"}
    path.write_text(json.dumps({f"openai/{ARCHITECT_ROUTE}": info, f"openai/{EDITOR_ROUTE}": info}))
    return path


def run_aider(aider: str, gateway: GatewayServer, repo: Path, home: Path,
              trap: ConnectionTrap) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    cmd = [
        aider, "--architect",
        "--model", f"openai/{ARCHITECT_ROUTE}",
        "--editor-model", f"openai/{EDITOR_ROUTE}", "--editor-edit-format", "editor-diff",
        "--weak-model", f"openai/{EDITOR_ROUTE}",  # commit messages: cheap, so local too
        "--openai-api-base", gateway.url + "/v1",
        "--model-metadata-file", str(model_metadata(home / "model-metadata.json")),
        "--message", TASK, "--yes-always",
        # offline and non-interactive
        "--no-check-update", "--analytics-disable", "--no-show-release-notes", "--no-show-model-warnings",
        "--no-gitignore", "--no-pretty", "--no-fancy-input", "--map-tokens", "0",
        "--input-history-file", str(home / "input.history"),
        "--chat-history-file", str(home / "chat.history.md"),
        "greet.py",
    ]
    return subprocess.run(cmd, cwd=repo, env=aider_env(home, trap), capture_output=True, text=True,
                          timeout=AIDER_TIMEOUT_S, stdin=subprocess.DEVNULL)


def detail(proc: subprocess.CompletedProcess[str], gateway: GatewayServer) -> str:
    gateway.flush()
    rows = [(r.route, r.decision, r.status, r.error_message) for r in gateway.ledger.query()]
    return (f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}\n"
            f"ledger: {rows}")


# ---------------------------------------------------------------------------------------- upstreams


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(text_of(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system")


def last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return text_of(users[-1].get("content")) if users else ""


def all_text(body: dict[str, Any]) -> str:
    return "\n".join(text_of(m.get("content")) for m in body.get("messages", []))


def is_commit_request(body: dict[str, Any]) -> bool:
    return "commit message" in system_text(body).lower()


def chat_requests(double: OpenAIDouble) -> list[RecordedRequest]:
    return [r for r in double.requests if r.path == "/v1/chat/completions" and isinstance(r.body, dict)]


def editor_answer(rec: RecordedRequest) -> Reply:
    """The local coder's answers: a SEARCH/REPLACE block for the editor prompt, a one-line commit
    message for the weak-model call, and a refusal for anything else (so a stray request cannot
    pass for an edit)."""
    body = rec.body if isinstance(rec.body, dict) else {}
    if is_commit_request(body):
        return Reply(text=COMMIT_MESSAGE)
    if PLAN in last_user_text(body) and "SEARCH/REPLACE" in system_text(body):
        return Reply(text=EDIT_BLOCK)
    return Reply(text="I only edit files from an architect's plan.")


def architect_answer(rec: RecordedRequest) -> Reply:
    body = rec.body if isinstance(rec.body, dict) else {}
    if "architect engineer" in system_text(body) and TASK in last_user_text(body):
        return Reply(text=PLAN)
    return Reply(text="unexpected request for the architect")


@pytest.fixture
def frontier() -> Iterator[OpenAIDouble]:
    d = OpenAIDouble(models=[FRONTIER_MODEL_ID], api_key=FRONTIER_KEY)  # rejects any other key
    d.default = architect_answer
    d.start()
    yield d
    d.stop()


EXAMPLE = ROOT / "examples" / "architect-editor.yaml"


def example_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, frontier_url: str,
                    local_base_url: str, local_model: str) -> GatewayServer:
    """The documented split (examples/architect-editor.yaml, docs/architect-editor.md), its
    upstreams pointed at this test's servers through the variables the file reads."""
    monkeypatch.setenv("FRONTIER_BASE_URL", frontier_url + "/v1")
    monkeypatch.setenv("FRONTIER_MODEL", FRONTIER_MODEL_ID)
    monkeypatch.setenv("OPENAI_API_KEY", FRONTIER_KEY)  # the gateway's own key for the frontier provider
    monkeypatch.setenv("LOCAL_BASE_URL", local_base_url)
    monkeypatch.setenv("LOCAL_MODEL", local_model)
    cfg = make_config(EXAMPLE.read_text(), tmp_path)
    return GatewayServer(cfg).start()


# ---------------------------------------------------------------------------------------- tests


def test_architect_on_frontier_and_editor_on_local_edit_and_commit_the_file(
    aider_bin: str, repo: Path, tmp_path: Path, trap: ConnectionTrap, frontier: OpenAIDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = OpenAIDouble(models=[LOCAL_MODEL_ID])
    local.default = editor_answer
    local.start()
    gateway = example_gateway(monkeypatch, tmp_path, frontier_url=frontier.url,
                              local_base_url=local.url + "/v1", local_model=LOCAL_MODEL_ID)
    try:
        first_commit = git(repo, "rev-parse", "HEAD").strip()
        proc = run_aider(aider_bin, gateway, repo, tmp_path / "home", trap)
        why = detail(proc, gateway)
        assert proc.returncode == 0, why

        # The file is edited and Aider committed the edit with the weak model's message.
        assert (repo / "greet.py").read_text() == EDITED, why
        assert git(repo, "rev-parse", "HEAD").strip() != first_commit, why
        assert git(repo, "log", "-1", "--format=%s").strip() == COMMIT_MESSAGE, why
        assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["greet.py"], why
        assert git(repo, "status", "--porcelain", "greet.py") == "", why

        # The frontier upstream saw the architect's request, and nothing else.
        [architect] = chat_requests(frontier)
        assert architect.body["model"] == FRONTIER_MODEL_ID
        assert AIDER_KEY not in str(architect.headers)  # the gateway sent its own key, not the client's
        assert "architect engineer" in system_text(architect.body)
        assert TASK in last_user_text(architect.body) and ORIGINAL.strip() in all_text(architect.body)
        assert not any("SEARCH/REPLACE" in system_text(r.body) for r in chat_requests(frontier))

        # The local upstream saw the editor's request, which carried the architect's plan and the file.
        local_requests = chat_requests(local)
        editors = [r for r in local_requests if not is_commit_request(r.body)]
        commits = [r for r in local_requests if is_commit_request(r.body)]
        assert len(editors) == 1, [last_user_text(r.body)[:200] for r in local_requests]
        [editor] = editors
        assert editor.body["model"] == LOCAL_MODEL_ID
        assert AIDER_KEY not in str(editor.headers) and FRONTIER_KEY not in str(editor.headers)
        assert PLAN in last_user_text(editor.body) and "SEARCH/REPLACE" in system_text(editor.body)
        assert ORIGINAL.strip() in all_text(editor.body)
        # The weak-model call (the commit message, from the diff) went to the local model too.
        assert len(commits) == 1 and "greet.py" in all_text(commits[0].body)

        # The ledger says which route, model and tier answered each call.
        gateway.flush()
        rows = gateway.ledger.query()
        by_route = {name: [r for r in rows if r.route == name] for name in (ARCHITECT_ROUTE, EDITOR_ROUTE)}
        assert len(rows) == 3 and all(r.status == 200 for r in rows), why
        [arch_row] = by_route[ARCHITECT_ROUTE]
        assert (arch_row.decision, arch_row.locality, arch_row.model) == (
            "frontier", "remote", FRONTIER_MODEL_ID)
        assert arch_row.client_format == "openai" and arch_row.stream  # Aider streams by default
        assert len(by_route[EDITOR_ROUTE]) == 2  # the edit and the commit message
        assert {(r.decision, r.locality, r.model) for r in by_route[EDITOR_ROUTE]} == {
            ("local-coder", "local", LOCAL_MODEL_ID)}
        assert trap.connections == 0, "Aider tried to reach the network outside the gateway"
    finally:
        gateway.stop()
        local.stop()


@pytest.fixture(scope="module")
def roomy_llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-server on the tiny model, as in tests/engines/conftest.py, with a context that holds
    Aider's editor prompt. The model's trained context is raised with `--override-kv` (llama-server
    caps a slot at it); its weights ignore position, so a longer context changes no reply."""
    binary = engines.find_binary()
    if binary is None or not binary.exists():
        engines._missing("llama-server not found")
    try:
        from tests.engines.tiny_gguf import write_tiny_model
    except ImportError as exc:
        engines._missing(f"cannot build the tiny GGUF model: {exc}")
    workdir = tmp_path_factory.mktemp("llama-aider")
    model = write_tiny_model(workdir / "tiny.gguf")
    port = free_port()
    command = [str(binary), "--host", "127.0.0.1", "--port", str(port), "-m", str(model), "--jinja",
               "-c", str(ROOMY_CONTEXT), "--override-kv", f"llama.context_length=int:{ROOMY_CONTEXT}",
               "-np", "1", "--metrics", "--no-webui", "-dev", "none", "-t", "2"]
    server = LlamaServer(url=f"http://127.0.0.1:{port}", model_path=model,
                         log_path=workdir / "llama-server.log")
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        engines._wait_healthy(server.url, process, time.monotonic() + engines.START_TIMEOUT_S)
    except RuntimeError as exc:
        process.kill()
        process.wait()
        pytest.fail(f"{exc}; command: {' '.join(command)}\n{server.log_tail()}", pytrace=False)
    yield server
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def engine_counters(server: LlamaServer) -> dict[str, float]:
    """llama-server's own Prometheus counters (`--metrics`): what the engine says it processed."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counters = {}
    for line in text.splitlines():
        if line.startswith("llamacpp:") and " " in line:
            name, value = line.rsplit(" ", 1)
            counters[name.removeprefix("llamacpp:")] = float(value)
    return counters


def test_editor_call_reaches_the_real_llama_server(
    aider_bin: str, repo: Path, tmp_path: Path, trap: ConnectionTrap, frontier: OpenAIDouble,
    roomy_llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    llama_server = roomy_llama_server
    gateway = example_gateway(monkeypatch, tmp_path, frontier_url=frontier.url,
                              local_base_url=llama_server.url + "/v1", local_model="tiny")
    try:
        engine_before = engine_counters(llama_server)
        proc = run_aider(aider_bin, gateway, repo, tmp_path / "home", trap)
        why = detail(proc, gateway) + "\nllama-server log:\n" + llama_server.log_tail()
        assert proc.returncode == 0, why

        # The architect's call went to the frontier double ...
        [architect] = chat_requests(frontier)
        assert TASK in last_user_text(architect.body), why

        # ... and the editor's call to the real engine: the gateway routed it there, the engine
        # logged it, and its (fixed) reply came back to Aider.
        gateway.flush()
        rows = gateway.ledger.query()
        editor_rows = [r for r in rows if r.route == EDITOR_ROUTE]
        assert [(r.decision, r.locality, r.model, r.status) for r in editor_rows] == [
            ("local-coder", "local", "tiny", 200)], why
        assert editor_rows[0].input_tokens > 1000, why  # Aider's whole editor prompt, not a probe
        # The engine itself counted the prompt and the reply the ledger recorded for the editor call.
        engine_after = engine_counters(llama_server)
        assert engine_after["prompt_tokens_total"] - engine_before["prompt_tokens_total"] \
            == editor_rows[0].input_tokens + editor_rows[0].cache_read_tokens, (engine_before, engine_after)
        assert engine_after["tokens_predicted_total"] - engine_before["tokens_predicted_total"] \
            == editor_rows[0].output_tokens, (engine_before, engine_after)
        assert LLAMA_REPLY in proc.stdout, why
        # The tiny model writes no SEARCH/REPLACE block, so nothing is edited or committed.
        assert (repo / "greet.py").read_text() == ORIGINAL, why
        assert trap.connections == 0, "Aider tried to reach the network outside the gateway"
    finally:
        gateway.stop()
