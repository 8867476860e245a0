"""A project keeps the artifacts of its newest runs only (session 22, attack-mcp).

Every run wrote `<run_id>.json` (its input, up to a request body: 4 MiB over MCP, and every agent's
output) and `.md`, and nothing ever removed them: an MCP client running ensembles in a loop filled the
disk. Real HTTP to the upstream double.
"""

from __future__ import annotations

from tests.ensembles.conftest import write_ensemble
from tierwise.ensembles.artifacts import list_artifacts


async def test_only_the_newest_runs_artifacts_are_kept(service, project, upstream):
    upstream.latency = 0.0
    write_ensemble(project, {"name": "a", "agents": [{"name": "x", "model": "small"}]})
    write_ensemble(project, {"name": "b", "agents": [{"name": "x", "model": "small"}]})
    svc = service()
    svc.library.keep_runs = 4
    runs = [await svc.run("a" if i % 2 else "b", f"input {i}") for i in range(9)]
    kept = list_artifacts(svc.library.artifacts_dir)
    # (before: all 9 runs' files)
    assert sorted(r["run_id"] for r in kept) == sorted(r.run_id for r in runs[-4:])
    files = sorted(p.name for p in svc.library.artifacts_dir.glob("*/*"))
    assert len(files) == 8 and {p.rsplit(".", 1)[1] for p in files} == {"json", "md"}


def test_the_default_keeps_a_thousand_runs():
    from tierwise.ensembles.artifacts import KEEP_RUNS
    from tierwise.ensembles.library import Library

    assert KEEP_RUNS == 1000 and Library(".").keep_runs == KEEP_RUNS


def test_only_the_newest_evaluations_are_kept(project):
    from tierwise.ensembles.library import Library

    write_ensemble(project, {"name": "a", "agents": [{"name": "x", "model": "small"}]})
    lib = Library(project)
    default = getattr(lib, "max_evaluations", None)
    lib.max_evaluations = 3
    for i in range(7):
        lib.record_evaluation("a", f"run-{i}", "good" if i % 2 else "bad", f"note {i}")
    # (before: all 7 lines, and every record read the whole file)
    assert [e["run_id"] for e in lib.evaluations("a")] == ["run-4", "run-5", "run-6"]
    assert lib.good_count("a") == 1
    assert default == 1000  # library.MAX_EVALUATIONS
