"""A pytest plugin (not loaded by the suite): run the sandbox's tests as on a kernel whose Landlock ABI is
TIERWISE_LANDLOCK_ABI (1-7; never above this kernel's). Each weak run's ruleset is then made for that ABI's rights
only, which is what such a kernel enforces (a right a ruleset does not handle is allowed), so a hole an older kernel
leaves shows here (session 35: `truncate` by path under ABI 1 and 2). docs/testing.md, "Other kernels".

    TIERWISE_LANDLOCK_ABI=1 .venv/bin/python -m pytest -p tests.landlock_abi -n 0 -k "not bwrap" tests/security/...
"""

from __future__ import annotations

import os

from tierwise.sandbox import landlock

_asked = int(os.environ.get("TIERWISE_LANDLOCK_ABI", "0") or 0)
if _asked > 0:
    _version = min(_asked, landlock.abi())
    landlock.abi = lambda: _version  # type: ignore[assignment]
