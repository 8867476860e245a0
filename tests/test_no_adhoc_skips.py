"""Under CI=true nothing may be skipped: a test that cannot run for want of a system piece calls
tests/harness.py `unavailable(what)` (a skip locally, a failure in CI) instead of its own
pytest.skip / skipif / importorskip, which would pass CI silently."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
AD_HOC_SKIP = re.compile(r"pytest\.(skip\(|importorskip\(|mark\.skipif\b|mark\.skip\b)")


def test_only_the_harness_skips():
    offenders = [f"{path.relative_to(TESTS)}:{n}: {line.strip()}"
                 for path in sorted(TESTS.rglob("*.py")) if path.name != "harness.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if AD_HOC_SKIP.search(line)]
    assert offenders == [], "use tests.harness.unavailable(what) instead:\n" + "\n".join(offenders)
