"""Path confinement for ensemble files, profiles, scripts and artifacts: one check, symlinks followed."""

from __future__ import annotations

import os
from pathlib import Path


def inside(path: str | Path, folder: str | Path) -> bool:
    """Does `path`, every symlink followed, lie in `folder` (itself resolved)?"""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
