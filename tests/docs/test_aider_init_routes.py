"""docs/architect-editor.md's Aider command for the config `tierwise init` writes names routes that config has, and
its editor role reaches the local model first. newuser38b followed the page's `openai/architect` / `openai/editor`
with init's config: neither is a route there, both went to `default_route` (the frontier), the editor included,
and nothing said so."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tierwise.starter import starter_yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "architect-editor.md"


def test_the_aider_command_for_inits_config_names_its_routes() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"config `tierwise init` writes.*?```bash\n(.*?)```", text, re.S)
    assert block, "architect-editor.md: no Aider command for the config `tierwise init` writes"
    roles = dict(re.findall(r"--(model|editor-model|weak-model) openai/(\S+)", block.group(1)))
    assert set(roles) == {"model", "editor-model", "weak-model"}, roles
    cfg = yaml.safe_load(starter_yaml())
    routes, models = cfg["routes"], cfg["models"]
    for name in roles.values():
        assert name in routes, (name, sorted(routes))
    first = routes[roles["editor-model"]]["targets"][0]
    assert cfg["providers"][models[first]["provider"]]["locality"] == "local"
