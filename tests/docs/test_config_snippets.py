"""Every tierwise.yaml snippet in the README and docs/ is a config the current code accepts.

A snippet whose top-level keys are all tierwise.yaml sections is parsed with the real loader. Snippets
leave out what the page is not about, so what they refer to is filled in: each model or route they name
without defining becomes a stand-in model, and each `${VAR}` without a default is set. A renamed or
removed key (or a typo in the docs) fails here with the page and line."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
import yaml

from tierwise.config import Config, parse_config
from tierwise.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# Snippets that need something outside the repo (a user's own Python module).
NEEDS_OUTSIDE = {"routes.assistant: cannot import module 'myapp.detectors'"}
STAND_IN_PROVIDER = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}


def _section(key: object) -> bool:
    """A tierwise.yaml section, or a near miss of one (a typo in the docs must fail, not be skipped)."""
    fields = list(Config.model_fields)
    return isinstance(key, str) and (key in fields or bool(difflib.get_close_matches(key, fields, cutoff=0.8)))


def _snippets() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            data = yaml.safe_load(m.group(1))
            if isinstance(data, dict) and data and all(_section(k) for k in data):
                out.append((f"{page.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}", m.group(1)))
    return out


SNIPPETS = _snippets()


def test_the_docs_hold_config_snippets():
    assert len(SNIPPETS) >= 30  # the finder still finds them


@pytest.mark.parametrize("where, block", SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_config_snippet_parses(where, block, monkeypatch):
    for var in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", block):  # ${VAR} without a default
        monkeypatch.setenv(var, "redis://127.0.0.1:6379/0" if "REDIS" in var else "a-stand-in-value-" + "x" * 24)
    data = yaml.safe_load(block)
    data.setdefault("providers", {})["_stand_in"] = STAND_IN_PROVIDER
    data.setdefault("models", {})
    for _ in range(50):
        try:
            parse_config(yaml.safe_dump(data))
            return
        except ConfigError as e:
            msg = e.message
            if any(s in msg for s in NEEDS_OUTSIDE):
                return
            gated = re.search(r"approvals\.routes\.([^:]+): '[^']+' is a model", msg)
            if gated:  # a stand-in model where the page gates a route: make it a route
                name = gated.group(1)
                data["models"].pop(name)
                data["models"]["_stand_in_model"] = {"provider": "_stand_in", "model": "x"}
                data.setdefault("routes", {})[name] = ["_stand_in_model"]
                continue
            missing = re.search(r"unknown (?:model or route|route or model|route|model) '([^']+)'", msg)
            if missing and missing.group(1) not in data["models"] and missing.group(1) not in data.get("routes", {}):
                data["models"][missing.group(1)] = {"provider": "_stand_in", "model": "x"}
                continue
            provider = re.search(r"unknown provider '([^']+)'", msg)
            if provider:
                data["providers"][provider.group(1)] = STAND_IN_PROVIDER
                continue
            pytest.fail(f"{where}: {msg}")
    pytest.fail(f"{where}: too many names to fill in")
