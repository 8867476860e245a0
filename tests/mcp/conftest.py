"""Fixtures of the MCP HTTP tests: an upstream double, a project folder, and the real server over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ensembles.conftest import stub_config, write_ensemble, write_profile
from tests.ensembles.upstream import StubUpstream
from tests.mcp.http_server import SECRET_KEYS, McpHttp, start


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    u = StubUpstream(answer=lambda model, prompt: "OK", latency=0.01).start()
    yield u
    u.stop()


def make_project(tmp_path: Path, upstream: StubUpstream) -> Path:
    """`tmp_path/proj`: a project with one profile and one ensemble on `upstream`, and secrets outside it."""
    proj = tmp_path / "proj"
    (proj / ".tierwise" / "ensembles").mkdir(parents=True)
    (proj / ".tierwise" / "profiles").mkdir(parents=True)
    write_profile(proj, "worker", model="small")
    write_ensemble(proj, {"name": "triage", "agents": [{"name": "only", "profile": "worker", "prompt": "triage"}]})
    (proj / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(upstream.url)))
    # A file outside every ensemble folder, shaped like an ensemble, holding secrets.
    (tmp_path / "secret.yaml").write_text(yaml.safe_dump({k: "v" for k in SECRET_KEYS}))
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({k: "v" for k in SECRET_KEYS}))
    return proj


@pytest.fixture
def project(tmp_path: Path, upstream: StubUpstream) -> Path:
    return make_project(tmp_path, upstream)


@pytest.fixture
def server(project: Path) -> Iterator[McpHttp]:
    s = start(project)
    yield s
    s.proc.kill()
    s.proc.wait()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[McpHttp, Path]]:
    """One server and project for a module's read-only probes (a parametrized test whose cases change nothing):
    starting the real `tierwise mcp` costs seconds on a busy machine, once per case before."""
    u = StubUpstream(answer=lambda model, prompt: "OK", latency=0.01).start()
    proj = make_project(tmp_path_factory.mktemp("mcp-shared"), u)
    s = start(proj)
    yield s, proj
    s.proc.kill()
    s.proc.wait()
    u.stop()


