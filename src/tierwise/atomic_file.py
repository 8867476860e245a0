"""Writing a state file whole or not at all.

The data goes to a temporary file of its own (mode 0600, a unique name: two gateway processes saving the
same state at once never write into one file) in the target's folder, which then replaces the target in one
rename: a reader sees the old file or the new one, and a crash mid-write leaves the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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


def file_part(name: str) -> str:
    """A route's (or any configured name's) part of a file name: its safe characters, and where any had to
    be replaced, a short digest of the whole name, so two names that differ only there ("a.b", "a/b",
    "a_b") never share one state file."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if safe == name:
        return safe
    return f"{safe[:64]}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
