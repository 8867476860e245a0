"""docs/distributed.md names every key of the `dispatch:` section, of `dispatch.worker`, of a
capability and of a capability route; the README links the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.dispatch.config import CapabilityConfig, DispatchConfig, WorkerConfig
from tierwise.dispatch.route_target import CapabilityRouteConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("model", [DispatchConfig, WorkerConfig, CapabilityConfig, CapabilityRouteConfig])
def test_every_dispatch_key_is_documented(model):
    text = (DOCS / "distributed.md").read_text(encoding="utf-8")
    missing = [k for k in model.model_fields if f"`{k}`" not in text]
    assert not missing, f"docs/distributed.md: undocumented {model.__name__} keys {missing}"


def test_readme_links_the_page():
    assert "docs/distributed.md" in (DOCS.parent / "README.md").read_text(encoding="utf-8")
