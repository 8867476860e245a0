"""The docs cannot drift from the code: every verifier type and option, every ensemble key and
every MCP tool and argument has its place in docs/, and every relative link in docs/ resolves."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from tierwise import mcp_fast
from tierwise.ensembles.schema import Agent, Ensemble, Profile
from tierwise.verifiers import specs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def sections(page: str) -> dict[str, str]:
    """`## `name`` headings of a page and the text under each."""
    text = (DOCS / page).read_text(encoding="utf-8")
    parts = re.split(r"^## `([^`]+)`\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def spec_models() -> dict[str, type]:
    union = typing.get_args(specs.VerifierSpec)[0]
    return {m.model_fields["type"].default: m for m in typing.get_args(union)}


def test_every_verifier_type_is_a_section_of_verifiers_md():
    assert set(sections("verifiers.md")) == set(specs.VERIFIER_TYPES) == set(spec_models())


@pytest.mark.parametrize("kind", specs.VERIFIER_TYPES)
def test_every_verifier_option_is_documented_in_its_section(kind):
    body = sections("verifiers.md")[kind]
    fields = {f.alias or name for name, f in spec_models()[kind].model_fields.items()} - {"type", "name"}
    missing = [f for f in fields if f"`{f}`" not in body]
    assert not missing, f"docs/verifiers.md, section {kind}: undocumented options {missing}"


@pytest.mark.parametrize("model", [Agent, Profile, Ensemble])
def test_every_ensemble_key_is_documented(model):
    text = (DOCS / "ensembles.md").read_text(encoding="utf-8")
    keys = set(model.model_fields) - {"path"}  # `path` is where the file was read from, not a key
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"docs/ensembles.md: undocumented {model.__name__} keys {missing}"


def test_every_mcp_tool_and_argument_is_documented():
    manifest = mcp_fast.load_manifest()
    assert manifest is not None
    tools = next(iter(manifest["versions"].values()))["tools/list"]["tools"]
    documented = sections("mcp.md")
    assert {t["name"] for t in tools} == set(documented)
    for t in tools:
        args = t["inputSchema"].get("properties", {})
        missing = [a for a in args if f"`{a}`" not in documented[t["name"]]]
        assert not missing, f"docs/mcp.md, tool {t['name']}: undocumented arguments {missing}"


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_relative_links_in_docs_resolve(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (DOCS / page).parent.joinpath(target).exists(), f"docs/{page} links to {target}, which does not exist"


def test_the_starter_configs_reference_names_a_readme_heading():
    # `tierwise init` writes "Reference: README.md#<anchor>"; the anchor must be a heading's GitHub slug
    # (was #configuration, while the heading is "Configuration (`tierwise.yaml`)").
    from tierwise.starter import starter_yaml

    anchor = re.search(r"README\.md#([\w-]+)", starter_yaml()).group(1)
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.+)$", readme, flags=re.M)}
    assert anchor in slugs, (anchor, sorted(slugs))


def _config_keys() -> list[tuple[str, str]]:
    """(dotted path, key) of every key tierwise.yaml takes: the top-level model, every route policy's model and
    the privacy section's (both validated apart from the top level), and every model nested in them."""
    from pydantic import BaseModel

    from tierwise.config import Config
    from tierwise.policies.registry import POLICY_TYPES, load_builtin_policies
    from tierwise.privacy.policy_config import PrivacyConfig

    def models_in(annotation: object) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]

    seen: set[type[BaseModel]] = set()
    out: list[tuple[str, str]] = []

    def walk(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if field.exclude:  # set by the loader (`source`, `base_dir`), not a key of the file
                continue
            key = field.alias or name
            out.append((f"{path}.{key}" if path else key, key))
            for sub in models_in(field.annotation):
                walk(sub, f"{path}.{key}" if path else key)

    walk(Config, "")
    load_builtin_policies()
    for name, ptype in sorted(POLICY_TYPES.items()):
        walk(ptype.config, f"routes.<{name} route>")
    walk(PrivacyConfig, "privacy")
    return out


def test_every_config_key_is_documented():
    # Before session 23 these keys were in no page: advisor `tool_name`, fallback `backoff_max`, draft_verify
    # `max_answer_chars`, the ensemble route's `project_dir`, `privacy.ner.min_score`.
    pages = [DOCS.parent / "README.md", *sorted(DOCS.rglob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    spans = set(re.findall(r"`([^`\n]+)`", text)) | set(re.findall(r"^[\s-]*([\w-]+):", text, flags=re.M))
    words = {w for s in spans for w in re.findall(r"[\w-]+", s)}
    stats = r"^(\w+?)_(above|below)$"  # `<statistic>_above` / `_below`: documented as the statistics' table
    missing = sorted({path for path, key in _config_keys()
                      if key not in words and not (re.match(stats, key) and re.match(stats, key).group(1) in words)})
    assert not missing, f"config keys no page of README.md or docs/ names: {missing}"
