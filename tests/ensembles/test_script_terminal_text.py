"""What an untrusted script agent writes reaches the operator's terminal through `tierwise ensemble run` and
`tierwise ensemble artifacts` only as inert text (session 28, sandbox attack round 9): the last line of its stderr is
the agent's error, and it carried terminal escapes (a retitled window, a cleared screen, an OSC 8 link) raw."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.ensembles.conftest import stub_config, write_ensemble
from tierwise.cli import main

ESCAPES = "\\x1b]0;owned\\x07\\x1b[2J\\x1b]8;;https://evil.example\\x07click\\x1b]8;;\\x07\\x9b31m"
SCRIPT = f"import sys\nsys.stderr.write('fine\\n{ESCAPES}\\n')\nsys.exit(1)\n"


def test_a_script_agent_s_error_reaches_the_terminal_inert(project: Path, upstream, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TIERWISE_HOME", str(project / "global"))
    monkeypatch.chdir(project)
    (project / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(upstream.url)))
    tools = project / ".tierwise" / "ensembles" / "tools"
    tools.mkdir()
    (tools / "loud.py").write_text(SCRIPT)
    write_ensemble(project, {"name": "loud", "agents": [{"name": "loud", "script": "tools/loud.py"}]})
    r = CliRunner()
    res = r.invoke(main, ["ensemble", "run", "loud", "--input", "x"])
    assert res.exit_code == 1, res.output
    assert "owned" in res.stderr, res.stderr  # the error is shown...
    assert "\x1b" not in res.stderr and "\x07" not in res.stderr and "\x9b" not in res.stderr, repr(res.stderr)
    assert "\\x1b]0;owned" in res.stderr, res.stderr  # ... as escapes
    runs = r.invoke(main, ["ensemble", "artifacts"])
    assert "\x1b" not in runs.output, repr(runs.output)
    run_id = next(line.split()[0] for line in runs.output.splitlines() if "loud" in line)
    for view in (["--markdown"], []):
        shown = r.invoke(main, ["ensemble", "artifacts", run_id, *view])
        assert shown.exit_code == 0, shown.output
        assert "owned" in shown.output and "\x1b" not in shown.output and "\x07" not in shown.output, \
            repr(shown.output)
