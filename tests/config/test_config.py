from pathlib import Path

import pytest

from tierwise.config import load_config, parse_config
from tierwise.errors import ConfigError

GOOD = """
providers:
  local:
    kind: openai
    base_url: http://127.0.0.1:11434/v1
    locality: local
  cloud:
    kind: anthropic
    base_url: ${CLOUD_URL:-https://api.anthropic.com}
    api_key_env: ANTHROPIC_API_KEY
models:
  qwen: {provider: local, model: "qwen2.5:7b", context_window: 32768}
  sonnet: {provider: cloud, model: claude-sonnet-4-5, vision: true, price: {input: 3, output: 15}}
routes:
  main:
    policy: rules
    rules:
      - match: {model: "*haiku*"}
        target: qwen
    default: chain
  chain: [qwen, sonnet]
  alias: sonnet
"""


def test_good_config_and_shorthands(monkeypatch):
    monkeypatch.delenv("CLOUD_URL", raising=False)
    cfg = parse_config(GOOD, file="t.yaml")
    assert cfg.providers["cloud"].base_url == "https://api.anthropic.com"
    assert cfg.routes["chain"].policy == "fallback" and cfg.routes["chain"].targets == ["qwen", "sonnet"]
    assert cfg.routes["alias"].targets == ["sonnet"]
    assert cfg.models["sonnet"].price.output == 15


def test_env_interpolation(monkeypatch):
    monkeypatch.setenv("CLOUD_URL", "http://example.invalid:9")
    cfg = parse_config(GOOD)
    assert cfg.providers["cloud"].base_url == "http://example.invalid:9"


def test_missing_env_names_key_path(monkeypatch):
    monkeypatch.delenv("NOPE_URL", raising=False)
    text = GOOD.replace("${CLOUD_URL:-https://api.anthropic.com}", "${NOPE_URL}")
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="t.yaml")
    assert "t.yaml" in e.value.message and "providers.cloud.base_url" in e.value.message
    assert "NOPE_URL" in e.value.message


def test_wrong_type_names_file_line_and_path():
    text = GOOD.replace("context_window: 32768", "context_window: lots")
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="t.yaml")
    msg = e.value.message
    assert "t.yaml" in msg and "models.qwen.context_window" in msg and "line 12" in msg


def test_unknown_key_is_an_error():
    text = GOOD.replace("locality: local", "locality: local\n    colour: blue")
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert "providers.local.colour" in e.value.message and "unknown key" in e.value.message


def test_unknown_provider_and_target():
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD.replace("provider: local,", "provider: lokal,"))
    assert "models.qwen.provider" in e.value.message and "lokal" in e.value.message
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD.replace("default: chain", "default: chian"))
    assert "routes.main" in e.value.message and "chian" in e.value.message


def test_unknown_policy_and_cycle():
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD.replace("policy: rules", "policy: magic"))
    assert "unknown policy 'magic'" in e.value.message and "fallback" in e.value.message
    cyc = GOOD + "  a: [b]\n  b: [a]\n"
    with pytest.raises(ConfigError) as e:
        parse_config(cyc)
    assert "cycle" in e.value.message


def test_bad_yaml_and_bad_url(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("providers: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in e.value.message and "YAML" in e.value.message
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD.replace("http://127.0.0.1:11434/v1", "localhost:11434"))
    assert "base_url" in e.value.message


def test_missing_file_says_how_to_fix(tmp_path: Path):
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.yaml")
    assert "tierwise init" in e.value.message


def test_examples_are_valid():
    root = Path(__file__).resolve().parents[2] / "examples"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load_config(f)


def test_starter_config_is_valid():
    from tierwise.starter import starter_yaml

    cfg = parse_config(starter_yaml({"local": [], "anthropic_key": False, "openai_key": True}))
    assert "local" in cfg.models and "gpt" in cfg.models


def test_an_in_memory_ledger_is_refused_with_the_way_out():
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD + "ledger: {path: ':memory:'}\n", file="t.yaml")
    assert "ledger.path" in e.value.message and "enabled: false" in e.value.message


def test_a_capability_route_without_dispatch_names_the_route_and_the_missing_section():
    # Before: valid for `doctor`, then a stack trace from `tierwise serve` building the gateway.
    text = """
providers:
  o: {kind: openai, base_url: "http://127.0.0.1:11434/v1", locality: local}
models:
  m: {provider: o, model: x}
routes:
  main: m
  summarise:
    policy: fallback
    targets: [{capability: summarise-docs}, m]
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="t.yaml")
    msg = str(e.value)
    assert "t.yaml" in msg and "line 8" in msg and "routes.summarise" in msg and "`dispatch:`" in msg
    ok = parse_config(text + 'dispatch: {redis_url: "redis://127.0.0.1:6379/0", tenant: acme}\n', file="t.yaml")
    assert ok.routes["capability:summarise-docs"].policy == "capability"


def test_url_credentials_and_a_bearer_key_together_are_a_config_error_not_a_500_per_request():
    """aiohttp turns `user:password@` into the Authorization header and refuses a request carrying
    another one: every call to the provider failed with an internal error."""
    text = GOOD.replace("base_url: http://127.0.0.1:11434/v1\n    locality: local",
                        "base_url: http://proxy:s3cret@127.0.0.1:11434/v1\n    api_key_env: OLLAMA_KEY\n    locality: local")
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="t.yaml")
    assert "providers.local" in e.value.message and "credentials" in e.value.message
    assert "s3cret" not in e.value.message
    # either one alone is fine, and so is basic auth in the URL next to Anthropic's x-api-key
    parse_config(text.replace("    api_key_env: OLLAMA_KEY\n", ""))
    parse_config(GOOD.replace("${CLOUD_URL:-https://api.anthropic.com}", "https://proxy:s3cret@api.example"))


def test_env_reference_in_a_flow_mapping_gets_a_quoting_hint(monkeypatch):
    # `${VAR}` is replaced after parsing, so in `{...}` its braces are YAML's: the bare message
    # "expected ',' or '}', but got '{'" did not say what to do.
    monkeypatch.setenv("PORT", "4000")
    with pytest.raises(ConfigError) as e:
        parse_config("ledger: {path: ledger-${PORT}.db}\n")
    assert "line 1" in e.value.message and 'must be quoted: "ledger-${VAR}.db"' in e.value.message
    assert parse_config('ledger: {path: "ledger-${PORT}.db"}\n').ledger.path == "ledger-4000.db"
    with pytest.raises(ConfigError) as e:
        parse_config("providers: [unclosed\n")
    assert "quoted" not in e.value.message  # no hint where it does not apply


def test_a_price_given_without_its_output_or_input_is_an_error_naming_it(tmp_path):
    # Before: `price: {input: 3}` loaded, and every output token was counted free (cost, budgets, savings).
    base = ("providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
            "models:\n  m: {provider: p, model: x, price: %s}\nroutes:\n  main: [m]\n")
    for price, missing in [("{input: 3}", "output"), ("{output: 15}", "input")]:
        path = tmp_path / "tierwise.yaml"
        path.write_text(base % price)
        with pytest.raises(ConfigError) as e:
            load_config(str(path))
        assert "line 4: models.m.price" in e.value.message and f"`{missing}` is missing" in e.value.message
    path.write_text(base % "{input: 3, output: 0}")
    assert load_config(str(path)).models["m"].price.output == 0


@pytest.mark.parametrize("key", ["default_max_tokens", "context_window"])
@pytest.mark.parametrize("value", ["yes", "true", "on", "false"])
def test_a_token_count_written_as_yes_or_no_is_refused(key, value):
    # Before (session 28): YAML's `default_max_tokens: yes` was read as 1 token (every answer cut at one token),
    # `context_window: true` as a 1-token window (every request skipped the model), silently.
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD.replace("context_window: 32768", f"{key}: {value}"), file="t.yaml")
    assert key in e.value.message and "number of tokens" in e.value.message, e.value.message
    for ok in ("4096", "'4096'"):  # (a number, or a string from ${VAR} interpolation, still is one)
        cfg = parse_config(GOOD.replace("context_window: 32768", f"{key}: {ok}"), file="t.yaml")
        assert getattr(cfg.models["qwen"], key) == 4096
