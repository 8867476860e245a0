"""Config slips that let protected data leave, named by `doctor` and `serve` with the fix:

- a provider written `locality: local` whose base_url is a hosted API (OpenRouter, OpenAI, ...) or a public IP
  address: privacy rules guard remote providers only, so protected data would reach it as written;
- a `privacy.routes` rule stricter than `privacy.policy` while clients may name a remote model directly: a
  request naming the model gets `privacy.policy` (`pii: local_only` on route main; `claude` named directly: the
  address was sent, redacted, to the remote model)."""

from __future__ import annotations

import pytest
import yaml

from tests.cli.test_new_user import _serve_warnings
from tierwise.commands.privacy_checks import direct_models_bypass, remote_marked_local
from tierwise.config import parse_config

PRIVATE = {"privacy": {"routes": {"main": {"pii": "local_only"}}}}


def _config(base_url: str, locality: str, **extra: object) -> str:
    return yaml.safe_dump({
        "ledger": {"enabled": False},
        "providers": {"cheap": {"kind": "openai", "base_url": base_url, "locality": locality,
                                "api_key_env": "CHEAP_KEY"}},
        "models": {"small": {"provider": "cheap", "model": "qwen/qwen-2.5-7b-instruct",
                             "price": {"input": 0.1, "output": 0.1}}},
        "routes": {"main": ["small"]}, **extra})


@pytest.mark.parametrize("base_url, locality, named", [
    ("https://openrouter.ai/api/v1", "local", "OpenRouter's hosted API (openrouter.ai)"),
    ("https://api.openai.com/v1", "local", "hosted API (api.openai.com)"),
    ("https://api.groq.com/openai/v1", "local", "hosted API (api.groq.com)"),
    ("http://8.8.8.8:8000/v1", "local", "a public address (8.8.8.8)"),
    ("https://openrouter.ai/api/v1", "remote", None),
    ("http://127.0.0.1:8080/v1", "local", None),
    ("http://10.0.0.5:8000/v1", "local", None),
    ("http://192.168.1.20:11434/v1", "local", None),
    ("http://gpu-box:8000/v1", "local", None),
    ("http://[fd00::5]:8000/v1", "local", None),
])
def test_a_hosted_api_or_public_address_written_local_is_named(base_url, locality, named):
    # Before: nothing said a word; with `pii: local_only` the route sent addresses and names to OpenRouter as
    # written (the boundary sits in front of remote providers only), and its spend counted as local.
    warnings = remote_marked_local(parse_config(_config(base_url, locality, **PRIVATE)))
    if named is None:
        assert warnings == [], warnings
    else:
        assert len(warnings) == 1 and named in warnings[0], warnings
        assert warnings[0].startswith("provider cheap is `locality: local`") and \
            warnings[0].endswith("Fix: `locality: remote`"), warnings
        assert "the `privacy:` rules let protected data reach it as written" in warnings[0], warnings


def test_without_a_privacy_section_it_says_one_would_not_guard_it():
    warnings = remote_marked_local(parse_config(_config("https://openrouter.ai/api/v1", "local")))
    assert len(warnings) == 1 and "a `privacy:` section would not guard it" in warnings[0], warnings


def test_serve_says_it_before_serving(tmp_path):
    lines = _serve_warnings(tmp_path, _config("http://8.8.8.8:8000/v1", "local"))
    hits = [ln for ln in lines if "provider cheap is `locality: local`" in ln]
    assert len(hits) == 1 and hits[0].startswith("tierwise: warning: ") and "locality: remote" in hits[0], lines


def test_doctor_says_it(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tierwise.cli import main as cli

    path = tmp_path / "tierwise.yaml"
    path.write_text(_config("http://8.8.8.8:8000/v1", "local"))
    monkeypatch.setenv("CHEAP_KEY", "k" * 40)

    async def unreached(name, p, listed=None):  # no call to a public address from a test
        return False, "not probed"

    monkeypatch.setattr("tierwise.commands.doctor.probe", unreached)
    out = CliRunner().invoke(cli, ["doctor", "-c", str(path)]).output
    hits = [ln for ln in out.splitlines() if "provider cheap is `locality: local`" in ln]
    assert len(hits) == 1 and hits[0].startswith("! ") and "Fix: `locality: remote`" in hits[0], out


def _bypass(**sections: object) -> list[str]:
    cfg = {"providers": {"ollama": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"},
                         "anthropic": {"kind": "anthropic", "base_url": "https://api.anthropic.com",
                                       "api_key_env": "ANTHROPIC_API_KEY"}},
           "models": {"qwen": {"provider": "ollama", "model": "q"},
                      "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5"}},
           "routes": {"main": ["claude", "qwen"]},
           "privacy": {"routes": {"main": {"pii": "local_only"}}}}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}  # type: ignore[dict-item]
    return direct_models_bypass(parse_config(yaml.safe_dump(cfg)))


def test_a_route_rule_that_a_client_naming_the_model_skips_is_named():
    [warning] = _bypass()
    assert warning.startswith("privacy.routes.main gives pii `local_only`, but clients may name a remote model "
                              "(claude) directly"), warning
    assert "privacy.policy's pii `redact`" in warning and "`server: {direct_models: false}`" in warning, warning


@pytest.mark.parametrize("sections", [
    {"server": {"direct_models": False}},                                     # clients name routes only
    {"privacy": {"policy": {"pii": "local_only"}, "routes": {"main": {"pii": "local_only"}}}},  # same everywhere
    {"privacy": {"policy": {"pii": "block"}, "routes": {"main": {"pii": "local_only"}}}},       # stricter default
    {"privacy": {"routes": {"main": {"pii": "allow"}}}},                       # looser on the route: no surprise
])
def test_nothing_to_say_when_the_route_rule_cannot_be_skipped(sections):
    assert _bypass(**sections) == []


def test_serve_names_the_route_rule_a_direct_model_skips(tmp_path):
    text = yaml.safe_dump({
        "ledger": {"enabled": False},
        "providers": {"big": {"kind": "openai", "base_url": "http://8.8.8.8:8000/v1", "api_key_env": "BIG_KEY"}},
        "models": {"claude": {"provider": "big", "model": "x", "price": {"input": 1, "output": 1}}},
        "routes": {"main": ["claude"]},
        "privacy": {"ner": {"enabled": False}, "routes": {"main": {"pii": "block"}}}})
    lines = _serve_warnings(tmp_path, text)
    assert any(ln.startswith("tierwise: warning: privacy.routes.main gives pii `block`") for ln in lines), lines


def test_doctor_says_it_loads_the_ner_model_before_the_seconds_it_takes(tmp_path, monkeypatch):
    # Before: with a privacy section and the NER extra, `doctor` printed nothing for ~30 s on a busy machine
    # (Presidio's import and spaCy's model), then `✓ config`; `serve` already said it.
    import importlib.util

    from click.testing import CliRunner

    from tests.harness import unavailable
    from tierwise.cli import main as cli

    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    monkeypatch.setattr("tierwise.commands.doctor.built_routes", lambda cfg: None)  # the seconds themselves
    path = tmp_path / "tierwise.yaml"
    path.write_text(_config("http://127.0.0.1:9/v1", "local", privacy={"classes": {"pii": {}}}))
    out = CliRunner().invoke(cli, ["doctor", "-c", str(path)]).output
    lines = out.splitlines()
    [note] = [i for i, ln in enumerate(lines) if "loading the privacy detectors' NER model (en_core_web_sm" in ln]
    assert note < next(i for i, ln in enumerate(lines) if ln.startswith("✓ config")), out
