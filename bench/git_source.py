"""A module of this repository as it was at a git ref (or any Python file), loaded beside today's for old-vs-new
comparisons in benchmarks (`git show <ref>:<path>`, written to a temporary file, imported under a name of its own)."""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def module_at(ref: str, path: str, name: str) -> ModuleType:
    """`path` (from the repository's root, e.g. `src/tierwise/privacy/textnorm.py`) at `ref`, imported as `name`."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True, text=True,
                         check=True).stdout
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(src)
    return load_file(file, name)


def load_file(path: str | Path, name: str) -> ModuleType:
    """The Python file at `path` imported as `name` (beside a module of the same name already imported)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
