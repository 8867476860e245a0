"""A short schemathesis run against the published OpenAPI document, with every check.

The long run (>= 10,000 cases) is `python bench/schemathesis_run.py`, figure in bench/RESULTS.md.
This one (a few hundred cases, fixed seed) keeps the document, the codecs and the gateway's
answers agreeing in CI: a 5xx, an answer outside the document, a schema-valid body refused or a
schema-violating one accepted, a 405 without `Allow` or an ignored key fails it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import unavailable

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 900  # a hang must fail the test, not the suite; no performance threshold


def test_schemathesis_all_checks_short_run() -> None:
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists() and shutil.which("schemathesis") is None:
        unavailable("schemathesis is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "schemathesis_run.py"), "--max-examples", "6", "--seed", "15"],
        cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "generated" in proc.stdout
