"""A real llama.cpp `llama-server`, serving the tiny GGUF model the tests build, for the whole session.

The binary comes from `scripts/install-llama-server.sh`. Where it (or the `gguf` package) is
missing the engine tests are skipped, except in CI (`CI=true`), where nothing may be skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import free_port, unavailable

REPO = Path(__file__).resolve().parents[2]
INSTALLED_BINARY = REPO / ".tools" / "llama" / "server"  # linked by scripts/install-llama-server.sh
BINARY_ENV = "TIERWISE_LLAMA_SERVER"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LlamaServer:
    """Where the running server listens, and what it serves."""

    url: str  # no trailing slash, no /v1
    model_path: Path
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _missing(reason: str) -> None:
    """Skip locally; in CI a missing engine is a failure, never a silent skip."""
    unavailable(f"{reason} (run scripts/install-llama-server.sh)")


def find_binary() -> Path | None:
    """$TIERWISE_LLAMA_SERVER, then the install script's venv, then PATH."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return Path(configured)
    if INSTALLED_BINARY.exists():
        return INSTALLED_BINARY
    for name in ("llama-server-vulkan", "llama-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def _wait_healthy(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or still loading (503)
        time.sleep(0.1)
    raise RuntimeError(f"llama-server did not become healthy within {START_TIMEOUT_S:.0f}s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary = find_binary()
    if binary is None or not binary.exists():
        _missing(f"llama-server not found (looked at ${BINARY_ENV}, {INSTALLED_BINARY} and PATH)")
    try:
        from tests.engines.tiny_gguf import CONTEXT, write_tiny_model
    except ImportError as exc:
        _missing(f"cannot build the tiny GGUF model: {exc}")

    workdir = tmp_path_factory.mktemp("llama")
    model = write_tiny_model(workdir / "tiny.gguf")
    log_path = workdir / "llama-server.log"
    port = free_port()
    command = [
        str(binary), "--host", "127.0.0.1", "--port", str(port), "-m", str(model),
        "--jinja",  # use the model's chat template (tool calls, Hermes format)
        "-c", str(CONTEXT), "-np", "1",  # one slot, so its prompt cache behaves like a small local server
        "--no-webui", "-dev", "none",  # CPU only, even where a GPU is present: same results everywhere
        "-t", "2",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(url=f"http://127.0.0.1:{port}", model_path=model, log_path=log_path)
    try:
        _wait_healthy(server.url, process, time.monotonic() + START_TIMEOUT_S)
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
