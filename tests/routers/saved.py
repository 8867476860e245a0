"""A router as an older tierwise saved it, for the routers' tests of settings added since: saved, the new settings
left out of what was written, loaded back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tierwise.routers import load_router, save_router


def saved_before(router: Any, folder: Path, *settings: str) -> Any:
    """`router` saved to `folder` without `settings` (as a tierwise that did not write them yet), then loaded."""
    path = save_router(router, folder)
    meta = json.loads(path.read_text())
    for name in settings:
        del meta[name]
    path.write_text(json.dumps(meta))
    return load_router(path)
