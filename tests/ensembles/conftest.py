from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ensembles.upstream import StubUpstream
from tests.harness import make_config
from tierwise.ensembles.library import Library
from tierwise.ensembles.service import EnsembleService
from tierwise.gateway import Gateway
from tierwise.ledger.store import Ledger


def stub_config(url: str, *, local_limit: int | None = None) -> dict[str, Any]:
    """Two local models (`small`, `tiny`) on one provider and a priced `frontier` on another."""
    return {
        "ledger": {"path": "ledger.db"},
        "providers": {
            "gpu": {"kind": "openai", "base_url": url + "/v1", "locality": "local",
                    "timeouts": {"connect": 1, "read": 10}},
            "cloud": {"kind": "openai", "base_url": url + "/v1", "locality": "remote",
                      "timeouts": {"connect": 1, "read": 10}},
        },
        "models": {
            "small": {"provider": "gpu", "model": "small-model"},
            "tiny": {"provider": "gpu", "model": "tiny-model"},
            "frontier": {"provider": "cloud", "model": "big-model", "price": {"input": 3.0, "output": 15.0}},
        },
        "routes": {"main": {"policy": "fallback", "targets": ["small"], "retries": 0}},
    }


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    u = StubUpstream().start()
    yield u
    u.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".tierwise" / "ensembles").mkdir(parents=True)
    (tmp_path / ".tierwise" / "profiles").mkdir(parents=True)
    return tmp_path


def write_ensemble(project: Path, data: dict[str, Any] | str, name: str | None = None) -> Path:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    name = name or (data["name"] if isinstance(data, dict) else "ens")
    p = project / ".tierwise" / "ensembles" / f"{name}.yaml"
    p.write_text(text)
    return p


def write_profile(project: Path, name: str, **fields: Any) -> Path:
    p = project / ".tierwise" / "profiles" / f"{name}.yaml"
    p.write_text(yaml.safe_dump(fields))
    return p


@pytest.fixture
async def service(project: Path, upstream: StubUpstream) -> AsyncIterator[Callable[..., EnsembleService]]:
    made: list[Gateway] = []

    def make(limits: dict[str, int] | None = None, trusted: tuple[str, ...] = (), **cfg_changes: Any) -> EnsembleService:
        """`trusted`: project ensembles (by name) the operator trusts: their scripts run on the host."""
        data = stub_config(upstream.url)
        data.update(cfg_changes)
        cfg = make_config(data, project)
        gw = Gateway(cfg, ledger=Ledger.open(str(project / "ledger.db")))
        made.append(gw)
        files = [project / ".tierwise" / "ensembles" / f"{n}.yaml" for n in trusted]
        return EnsembleService(gw, Library(project, global_dir=project / "global", library_dir=project / "lib",
                                           trusted=files, script_env=cfg.ensembles.script_env), limits=limits)

    yield make
    for gw in made:
        await gw.close()
