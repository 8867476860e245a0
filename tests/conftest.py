"""Fixtures every test folder may use."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import OwnRedis, unavailable

# One thread per numeric library: the suite runs on two workers on two cores, and OpenMP/BLAS pools
# of their own per process spin against each other (a stack router's fit took 3-5x longer so). Set
# before numpy, scikit-learn or torch load their thread pools; subprocesses inherit it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# pytest-xdist sets COLUMNS=80 and LINES=24 in its workers, which would cut the CLI's tables to 80
# columns there and not in a serial run: the tests see the same environment either way.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Any]:
    """`own_redis(appendonly=True)`: a started redis-server of the test's own (see OwnRedis)."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (Debian package redis-server)")
    servers: list[OwnRedis] = []

    def make(appendonly: bool = True) -> OwnRedis:
        folder = tmp_path / f"redis{len(servers)}"
        folder.mkdir()
        r = OwnRedis(folder, appendonly=appendonly)
        r.start()
        servers.append(r)
        return r

    yield make
    for r in servers:
        r.stop()
