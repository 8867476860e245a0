"""A misspelt value in tierwise.yaml names what it most likely meant, as a misspelt key does: a policy,
provider, route or model name, a fixed choice (`locality: locla`), a Claude Code class. And the YAML slips a
newcomer makes (a glob left unquoted, a key indented off its column, a second `: ` in a value, no space after
a colon) say what to write instead of PyYAML's or pydantic's words alone."""

from __future__ import annotations

import pytest
import yaml

from tierwise.config import parse_config
from tierwise.errors import ConfigError

LOCAL = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}
BASE = {"providers": {"ollama": LOCAL}, "models": {"qwen": {"provider": "ollama", "model": "q"}},
        "routes": {"main": ["qwen"]}}


def _refused(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    return e.value.message


def _with(**sections: object) -> str:
    return yaml.safe_dump({**BASE, **sections})


@pytest.mark.parametrize("text, where, near", [
    (_with(routes={"main": {"policy": "fallbak", "targets": ["qwen"]}}), "routes.main.policy", "fallback"),
    (_with(models={"qwen": {"provider": "olama", "model": "q"}}), "models.qwen.provider", "ollama"),
    (_with(server={"default_route": "mian"}), "server.default_route", "main"),
    (_with(reference_model="qwne"), "reference_model", "qwen"),
    (_with(cache={"enabled": True, "routes": {"mian": {}}}), "cache.routes.mian", "main"),
    (_with(budgets={"limits": [{"name": "b", "usd": 1, "routes": ["mian"]}]}),
     "budgets.limits[0].routes", "main"),
    (_with(providers={"ollama": {**LOCAL, "locality": "locla"}}), "providers.ollama.locality", "local"),
    (_with(providers={"ollama": {**LOCAL, "image_urls": "refuze"}}), "providers.ollama.image_urls", "refuse"),
    (_with(routes={"main": {"policy": "rules", "rules": [{"match": {"claude_code": "backgroud"}, "target": "qwen"}],
                            "default": "qwen"}}), "routes.main.rules[0].match.claude_code", "background"),
])
def test_a_misspelt_value_names_the_closest_valid_one(text, where, near):
    # Before: `unknown route or model 'mian'`, `Input should be 'local' or 'remote'`, `Value error, unknown
    # Claude Code class 'backgroud'; known: ...`: the newcomer compared the lists by eye.
    msg = _refused(text)
    assert f"{where}: " in msg and f"did you mean `{near}`?" in msg, msg
    assert "Value error" not in msg, msg


def test_a_value_far_from_every_valid_one_gets_no_guess_but_the_list():
    msg = _refused(_with(server={"default_route": "zzzz"}))
    assert "did you mean" not in msg and "known: main, qwen" in msg, msg


@pytest.mark.parametrize("line, hint", [
    ("      - {name: h, match: {model: *haiku*}, target: qwen}", '(`model: "*haiku*"`)'),
    ("      - {name: h, match: {model: *haiku}, target: qwen}", '(`model: "*haiku*"`)'),
])
def test_an_unquoted_glob_says_to_quote_it(line, hint):
    # Before: "expected alphabetic or numeric character, but found '*'" (or "found undefined alias"): YAML
    # reads `*haiku*` as an alias, and nothing said that the README's glob is quoted for that reason.
    text = yaml.safe_dump({k: v for k, v in BASE.items() if k != "routes"}) + \
        "routes:\n  main:\n    policy: rules\n    rules:\n" + line + "\n    default: qwen\n"
    msg = _refused(text)
    assert f"line {text.splitlines().index(line) + 1}: not valid YAML" in msg and hint in msg, msg


def test_a_key_indented_off_its_column_says_so():
    text = "providers:\n  ollama:\n    kind: openai\n   base_url: http://127.0.0.1:9/v1\n"
    msg = _refused(text)
    assert "line 4: not valid YAML" in msg and "the keys of one mapping start in the same column" in msg, msg


def test_a_value_with_a_second_colon_says_to_quote_it():
    text = yaml.safe_dump(BASE) + "server:\n  host: 127.0.0.1: 4000\n"
    msg = _refused(text)
    assert "quote a value that holds one" in msg, msg


def test_no_space_after_a_colon_says_so_without_repeating_the_value():
    # Before: "providers.ollama: Input should be a valid dictionary or instance of ProviderConfig".
    text = "providers:\n  ollama:\n    kind:openai\n"
    msg = _refused(text)
    assert "providers.ollama: " in msg and "YAML needs a space after the colon (`key: value`)" in msg, msg
    assert "kind:openai" not in msg, msg  # a value may be a secret: never repeated


def test_one_target_written_without_brackets_says_to_write_a_list():
    msg = _refused(_with(routes={"main": {"policy": "fallback", "targets": "qwen"}}))
    assert "routes.main.targets: " in msg and "`[name]`" in msg, msg


def test_a_variable_without_braces_says_only_braced_ones_are_replaced():
    # Before: "must be an http(s) URL such as ...", with nothing about `$LOCAL_URL` being kept as written.
    text = _with(providers={"ollama": {**LOCAL, "base_url": "$LOCAL_URL"}})
    msg = _refused(text)
    assert "providers.ollama.base_url: " in msg and "only `${VAR}` is replaced from the environment" in msg, msg


def test_models_written_as_a_list_says_to_write_named_entries():
    text = yaml.safe_dump({**BASE, "models": [{"qwen": {"provider": "ollama", "model": "q"}}]})
    msg = _refused(text)
    assert "models: " in msg and "write `name: {...}` entries under it, not a list" in msg, msg


KEY = "Zq8vT2mXkP4rN7wL1sH6yB3cF9dJ0gA5"  # no known key shape: the scrubber's shapes do not catch it


@pytest.mark.parametrize("value", ["${UPSTREAM_TOKEN}", "${ANTHROPIC}", KEY])
@pytest.mark.parametrize("where, sections", [
    ("models.qwen.provider", lambda v: {"models": {"qwen": {"provider": v, "model": "q"}}}),
    ("routes.main[0]", lambda v: {"routes": {"main": [v]}}),
    ("server.default_route", lambda v: {"server": {"default_route": v}}),
    ("routes.main.policy", lambda v: {"routes": {"main": {"policy": v, "targets": ["qwen"]}}}),
    ("budgets.limits[0].routes", lambda v: {"budgets": {"limits": [{"name": "b", "usd": 1, "routes": [v]}]}}),
    ("routes.main.rules[0].match.claude_code", lambda v: {"routes": {"main": {
        "policy": "rules", "rules": [{"match": {"claude_code": v}, "target": "qwen"}], "default": "qwen"}}}),
])
def test_an_unknown_name_that_may_be_a_secret_is_not_repeated(value, where, sections, monkeypatch):
    # Before: "unknown provider 'Zq8v...' (known: ollama)": a `${VAR}` naming the wrong variable (or a key pasted
    # in place of a name) put the key on the console, though the file never held it.
    monkeypatch.setenv("UPSTREAM_TOKEN", KEY)
    monkeypatch.setenv("ANTHROPIC", KEY)
    msg = _refused(_with(**sections(value)))
    assert f"{where}: " in msg and "the value is not repeated" in msg, msg
    assert KEY[:12] not in msg and KEY[-12:] not in msg, msg


def test_an_ordinary_misspelt_name_is_still_repeated():
    msg = _refused(_with(server={"default_route": "mian"}))
    assert "unknown route or model 'mian' (did you mean `main`?" in msg, msg


@pytest.mark.parametrize("section, value, hint", [
    ({"observability": {"dashboard": True}}, "observability.dashboard", "write `dashboard: {enabled: true}`"),
    ({"cache": False}, "cache", "write `cache: {enabled: false}`"),
    ({"observability": {"tracing": True}}, "observability.tracing", "write its settings under it, `tracing: {...}`"),
])
def test_a_section_written_as_true_or_false_says_what_to_write(section, value, hint):
    # Before (session 38, a first-time user): "observability.dashboard: Input should be a valid dictionary or instance
    # of DashboardConfig", a class name the config never shows.
    msg = _refused(_with(**section))
    assert f"{value}: a section of settings, not true/false: {hint}" in msg, msg
    assert "DashboardConfig" not in msg and "instance of" not in msg, msg
