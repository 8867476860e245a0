"""An untrusted script agent's answer reaches the operator's terminal inert (review28a): round 9 escaped the agent's
error and the run's record, and left the answer on stdout "as it is (pipe it where it goes)": printed to a terminal,
the script's escapes retitled it, cleared it and planted an OSC 8 link. Written to a terminal it is escaped now;
piped or redirected it stays byte for byte what the ensemble answered."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import yaml

from tests.ensembles.conftest import stub_config, write_ensemble

ANSWER = "answer \x1b]0;owned\x07\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \u009b31m \u202eend"
SCRIPT = f"import json\nprint(json.dumps({{\"success\": True, \"data\": {ANSWER!r}}}))\n"
CLI = [sys.executable, "-c", "from tierwise.cli import main; main()", "ensemble", "run", "loud", "--input", "x"]


def _project(project: Path, upstream_url: str) -> dict[str, str]:
    (project / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(upstream_url)))
    tools = project / ".tierwise" / "ensembles" / "tools"
    tools.mkdir()
    (tools / "loud.py").write_text(SCRIPT)
    write_ensemble(project, {"name": "loud", "agents": [{"name": "loud", "script": "tools/loud.py"}]})
    return {**os.environ, "TIERWISE_HOME": str(project / "global"),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _on_a_terminal(env: dict[str, str], cwd: Path) -> bytes:
    main, child = pty.openpty()
    proc = subprocess.Popen(CLI, stdout=child, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    os.close(child)
    shown = bytearray()
    try:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode(errors="replace")
    return bytes(shown)


def test_a_script_agent_s_answer_reaches_a_terminal_inert_and_a_pipe_as_it_is(project: Path, upstream) -> None:
    env = _project(project, upstream.url)
    shown = _on_a_terminal(env, project)
    assert b"answer" in shown and b"owned" in shown, shown
    for raw in (b"\x1b", b"\x07", "\u009b".encode(), "\u202e".encode()):
        assert raw not in shown, shown
    assert b"\\x1b]0;owned" in shown, shown
    piped = subprocess.run(CLI, capture_output=True, env=env, cwd=project, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode() == ANSWER + "\n", piped.stdout
