"""Writing a state file whole or not at all.

The data goes to a temporary file of its own (mode 0600, a unique name: two gateway processes saving the
same state at once never write into one file) in the target's folder, which then replaces the target in one
rename: a reader sees the old file or the new one, and a crash mid-write leaves the old one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: str | Path, data: Any, **dump_options: Any) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, **dump_options)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
