"""A router as an older tierwise saved it, for the routers' tests of settings added since: saved, the new settings
left out of what was written, loaded back, scoring as it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, save_router


def saved_before(router: Any, folder: Path, data: OutcomeDataset, *settings: str) -> Any:
    """`router` saved to `folder` without `settings` (as a tierwise that did not write them yet), then loaded; it
    scores `data` as `router` does (the settings' old behaviour is what the router was fitted with)."""
    path = save_router(router, folder)
    meta = json.loads(path.read_text())
    for name in settings:
        del meta[name]
    path.write_text(json.dumps(meta))
    loaded = load_router(path)
    np.testing.assert_allclose(loaded.score(data), router.score(data), rtol=1e-6, atol=1e-6)
    return loaded
