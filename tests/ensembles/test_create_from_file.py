"""`tierwise ensemble create NAME --from-file FILE` carries the ensemble's script files along,
confined at both ends (scripts must live in the ensemble folders: docs/security/mcp.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.ensembles.carry import MAX_SCRIPT_BYTES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ensembles"
SCRIPT = 'import json, sys\nprint(json.dumps({"success": True, "data": json.load(sys.stdin)["input"]}))\n'


def create(project: Path, name: str, source: Path, *extra: str):
    return CliRunner().invoke(main, ["ensemble", "create", name, "--from-file", str(source),
                                     "--project", str(project), *extra])


def source_ensemble(folder: Path, script: str = "tools/echo.py", name: str = "carried") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / f"{name}.yaml"
    f.write_text(yaml.safe_dump({"name": name, "agents": [
        {"name": "echo", "script": script}, {"name": "again", "script": script, "depends_on": ["echo"]}]}))
    return f


def ensembles(project: Path) -> Path:
    return project / ".tierwise" / "ensembles"


@pytest.mark.parametrize("example,scripts", [
    ("code-review-swarm", ["scripts/split_diff.py"]),
])
def test_the_examples_arrive_with_their_scripts(project, example, scripts):
    res = create(project, example, EXAMPLES / f"{example}.yaml")
    assert res.exit_code == 0, res.output
    for s in scripts:
        assert (ensembles(project) / s).read_bytes() == (EXAMPLES / s).read_bytes()
        assert s in res.output
    (project / "tierwise.yaml").write_text((EXAMPLES / "tierwise.yaml").read_text())
    res = CliRunner().invoke(main, ["ensemble", "validate", example, "--project", str(project),
                                    "-c", str(project / "tierwise.yaml")])
    assert res.exit_code == 0, res.output


def test_a_script_used_twice_is_copied_once_and_the_same_bytes_are_left_alone(project, tmp_path):
    src = source_ensemble(tmp_path / "src")
    (tmp_path / "src" / "tools").mkdir()
    (tmp_path / "src" / "tools" / "echo.py").write_text(SCRIPT)
    assert create(project, "carried", src).exit_code == 0
    res = create(project, "carried", src, "--force")  # the same script is there: fine
    assert res.exit_code == 0, res.output
    assert (ensembles(project) / "tools" / "echo.py").read_text() == SCRIPT


def refused(project: Path, src: Path, why: str) -> None:
    res = create(project, "carried", src)
    assert res.exit_code == 2 and why in res.output, res.output
    assert not (ensembles(project) / "carried.yaml").exists()  # nothing written when anything is refused


def test_a_missing_script_is_refused(project, tmp_path):
    refused(project, source_ensemble(tmp_path / "src"), "script 'tools/echo.py' not found next to the ensemble file")


def test_a_script_symlinked_out_of_the_source_folder_is_refused(project, tmp_path):
    secret = tmp_path / "elsewhere" / "secret.py"
    secret.parent.mkdir()
    secret.write_text("print('secret')\n")
    src = source_ensemble(tmp_path / "src")
    (tmp_path / "src" / "tools").mkdir()
    os.symlink(secret, tmp_path / "src" / "tools" / "echo.py")
    refused(project, src, "resolves outside the ensemble's folder")
    assert not (ensembles(project) / "tools" / "echo.py").exists()


@pytest.mark.parametrize("path", ["../outside.py", "/etc/passwd", "~/x.py", "tools/../../x.py"])
def test_paths_that_climb_out_are_refused(project, tmp_path, path):
    (tmp_path / "outside.py").write_text(SCRIPT)
    refused(project, source_ensemble(tmp_path / "src", path), "must be a file path relative to the ensemble's folder")


def test_a_different_script_already_there_is_never_replaced(project, tmp_path):
    theirs = ensembles(project) / "tools" / "echo.py"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("print('another ensemble runs me')\n")
    src = source_ensemble(tmp_path / "src")
    (tmp_path / "src" / "tools").mkdir()
    (tmp_path / "src" / "tools" / "echo.py").write_text(SCRIPT)
    refused(project, src, "a different script 'tools/echo.py' is already in")
    assert theirs.read_text() == "print('another ensemble runs me')\n"


def test_a_destination_folder_that_is_a_symlink_out_is_refused(project, tmp_path):
    out = tmp_path / "victim"
    out.mkdir()
    ensembles(project).mkdir(parents=True, exist_ok=True)
    os.symlink(out, ensembles(project) / "tools")
    src = source_ensemble(tmp_path / "src")
    (tmp_path / "src" / "tools").mkdir()
    (tmp_path / "src" / "tools" / "echo.py").write_text(SCRIPT)
    refused(project, src, "would land outside")
    assert list(out.iterdir()) == []


def test_an_oversized_script_is_refused(project, tmp_path):
    src = source_ensemble(tmp_path / "src")
    (tmp_path / "src" / "tools").mkdir()
    (tmp_path / "src" / "tools" / "echo.py").write_bytes(b"#" * (MAX_SCRIPT_BYTES + 1))
    refused(project, src, "at most")


def test_an_inline_command_cannot_be_carried(project, tmp_path):
    (tmp_path / "src").mkdir()
    f = tmp_path / "src" / "carried.yaml"
    f.write_text(yaml.safe_dump({"name": "carried", "agents": [{"name": "a", "script": ["python3", "-c", "1"]}]}))
    refused(project, f, "inline command")
