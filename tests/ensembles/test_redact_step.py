"""The built-in `redact` agent (tierwise.privacy.ensemble_step): before any model sees the text."""

from __future__ import annotations

import pytest
import yaml

from tests.ensembles.conftest import write_ensemble
from tierwise.ensembles.schema import load_ensemble, parse_ensemble
from tierwise.errors import ConfigError

TEXT = "Write to jane@example.com, IBAN DE89 3704 0044 0532 0130 00, key sk-ant-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6"


async def test_redact_step_feeds_only_placeholders_to_models(service, project, upstream):
    upstream.answer = lambda model, prompt: f"summary of: {prompt[-80:]}"
    p = write_ensemble(project, {"name": "r", "agents": [
        {"name": "clean", "redact": True},
        {"name": "sum", "model": "small", "depends_on": ["clean"], "input_key": "text"}]})
    run = await service().run(load_ensemble(p), TEXT)
    assert run.status == "ok", [(a.name, a.error) for a in run.agents]
    out = run.agent("clean").output
    assert out["redacted"] == {"EMAIL_ADDRESS": 1, "IBAN_CODE": 1, "SECRET": 1}
    assert "jane@example.com" not in str(upstream.seen[0].prompt) and "<IBAN_CODE_1>" in upstream.seen[0].prompt
    assert "jane@example.com" not in str(run.output)


async def test_redact_step_entities_and_json_input(service, project, upstream):
    p = write_ensemble(project, {"name": "r2", "agents": [
        {"name": "clean", "redact": {"entities": ["EMAIL_ADDRESS"]}}]})
    run = await service().run(load_ensemble(p), {"note": TEXT})
    out = run.agent("clean").output
    assert out["redacted"] == {"EMAIL_ADDRESS": 1} and "DE89" in out["text"] and '"note"' in out["text"]


async def test_redact_step_fails_closed(service, project, upstream):
    p = write_ensemble(project, {"name": "r3", "agents": [
        {"name": "clean", "redact": {"classes": ["nope"]}},
        {"name": "sum", "model": "small", "depends_on": ["clean"]}]})
    run = await service().run(load_ensemble(p), TEXT)
    assert run.status == "failed" and "unknown data class" in run.agent("clean").error
    assert upstream.seen == []  # nothing reached a model


def test_redact_step_config_errors():
    with pytest.raises(ConfigError, match="classes.*entities|not both"):
        parse_ensemble(yaml.safe_dump({"name": "e", "agents": [
            {"name": "a", "redact": {"classes": ["pii"], "entities": ["EMAIL_ADDRESS"]}}]}), file="e.yaml")
    with pytest.raises(ConfigError, match="exactly one of"):
        parse_ensemble(yaml.safe_dump({"name": "e", "agents": [
            {"name": "a", "redact": True, "model": "small"}]}), file="e.yaml")
