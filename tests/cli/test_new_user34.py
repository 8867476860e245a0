"""A first-time user's confusions (session 34, newuser34), each as `doctor`, `tierwise claude` or `flywheel export`
says it now."""

from __future__ import annotations

from click.testing import CliRunner

from tests.harness import one_model_config
from tierwise.cli import main


def doctor(path) -> str:
    result = CliRunner().invoke(main, ["doctor", "-c", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def test_doctor_warns_of_a_per_key_budget_on_a_gateway_without_keys(tmp_path, monkeypatch):
    """docs/budgets.md's example (`{name: team-a, per: key, match: [team-a], ...}`) pasted into a config that takes no
    gateway keys: every request's key is `anonymous`, the budget covered none of them, and doctor said "No check
    failed" (its check compared `match` only with configured key names, and there were none)."""
    monkeypatch.chdir(tmp_path)
    rest = """\
ledger: {enabled: false}
budgets:
  limits:
    - {name: team-a, per: key, match: [team-a], usd: 20, window: day}
    - {name: everyone, per: key, usd: 5, window: day}
    - {name: all-keys, per: key, match: ["*"], usd: 5, window: day}
rate_limits:
  limits: [{name: team-a-rpm, per: key, match: [team-a], requests_per_minute: 60}]
"""
    out = doctor(one_model_config(tmp_path, rest))
    warned = [x for x in out.splitlines() if "takes no keys" in x]
    assert len(warned) == 2, out
    assert warned[0].startswith("! budgets.limits team-a:") and "`anonymous`" in warned[0], warned
    assert "server.api_keys_env" in warned[0], warned
    assert warned[1].startswith("! rate_limits.limits team-a-rpm:"), warned


def test_tierwise_claude_does_not_warn_of_a_name_the_default_routes_rules_take(tmp_path):
    """README: `tierwise claude --haiku-model local --subagent-model local`; examples/claude-code.yaml routes the name
    `local` by a rule of its default route (`local-alias`, `match: {model: local}`). The command warned "'local' is
    not a route or model of the config: its requests go to the default route `claude-code`; did you mean
    `local-first`?": true to the letter, and it told the user to change a name the example handles as written."""
    from pathlib import Path

    import yaml

    from tierwise.commands.claude import unknown_name_warning
    from tierwise.config import load_config

    example = Path(__file__).resolve().parents[2] / "examples" / "claude-code.yaml"
    cfg = load_config(example)
    assert unknown_name_warning(cfg, "--haiku-model", "local") is None
    assert unknown_name_warning(cfg, "--subagent-model", "claude-haiku-4-5") is None  # `*haiku*` rule
    warned = unknown_name_warning(cfg, "--subagent-model", "locla")  # a typo still is one
    assert warned is not None and "default route `claude-code`" in warned, warned
    # A rule that also asks for something else does not take every request of that name: still said.
    raw = yaml.safe_load(example.read_text())
    for rule in raw["routes"]["claude-code"]["rules"]:
        if rule["match"].get("model") == "local":
            rule["match"]["subagent"] = True
    path = tmp_path / "cc.yaml"
    path.write_text(yaml.safe_dump(raw))
    warned = unknown_name_warning(load_config(path), "--haiku-model", "local")
    assert warned is not None and "not a route or model" in warned, warned


def test_an_empty_flywheel_export_says_where_its_examples_come_from(tmp_path):
    """A developer rated a local answer `good` with `tierwise feedback` (ledger.store_text on) and ran `tierwise
    flywheel export`: "wrote 0 SFT examples, 0 preference pairs, 0 judge triples", and nothing said that ratings
    are not what it reads (only judge verdicts: a reflective route's, a learned route's validated shadow pairs)."""
    import json
    import time

    from tests.learning.test_flywheel import export_cli
    from tierwise.ledger.records import LedgerRecord
    from tierwise.ledger.store import Ledger

    led = Ledger(str(tmp_path / "ledger.db"))
    led.submit(LedgerRecord(request_id="req_1", ts=time.time(), route="main", kind="chat", prompt="hi",
                            extra={"feedback": [{"rating": "good", "ts": time.time()}]}))
    led.flush()
    led.close()
    res = export_cli(tmp_path, {"ledger": {"path": "ledger.db", "store_text": True}})
    assert res.exit_code == 0, res.output
    assert "wrote 0 SFT examples" in res.output, res.output
    note = next((x for x in res.output.splitlines() if x.startswith("nothing to export")), "")
    assert "policy: reflective" in note and "validation" in note and "tierwise feedback" in note, res.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["counts"]["sft"] == 0


def test_init_says_which_names_clients_use_and_where_the_others_go(tmp_path, monkeypatch):
    """`tierwise init` (OpenAI key only) names the models `gpt` and `gpt-mini`; code moved over with
    `model="gpt-4o-mini"` went to route `main`, whose default is `frontier` (gpt-4o, ~16x the price), and the
    answer said `gpt-4o-mini`. Nothing `init` printed said which names clients use."""
    from tests.harness import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-only-for-init")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    res = CliRunner().invoke(main, ["init", "--local", f"http://127.0.0.1:{free_port()}/v1"])
    assert res.exit_code == 0, res.output
    line = next((x for x in res.output.splitlines() if "clients ask for" in x), "")
    assert "routes main, local-first, frontier" in line and "models local, gpt, gpt-mini" in line, res.output
    assert "'gpt-4o-mini' included) goes to route main" in line, line


def test_a_misspelt_budget_window_is_one_line_without_pydantics_union_names(tmp_path, monkeypatch):
    """`window: dya` gave two lines naming pydantic's union members: `window.literal['day','month']: Input should be
    'day' or 'month'` and `window.Rolling: Input should be a valid dictionary or instance of Rolling`; `{rolling:
    1hour}` the first of them beside the real problem."""
    monkeypatch.chdir(tmp_path)
    for window, says in (("dya", "(did you mean `day`?)"), ("{rolling: 1hour}", "'1hour' is not a duration"),
                         ("{rollin: 1h}", "{rolling: 1h}"), ("5", "5 is not a window")):
        out = doctor(one_model_config(tmp_path, f"budgets: {{limits: [{{name: d, usd: 5, window: {window}}}]}}"))
        lines = [x for x in out.splitlines() if "budgets.limits[0].window" in x]
        assert len(lines) == 1 and says in lines[0], (window, out)
        assert "literal[" not in out and "Rolling" not in out, (window, out)
    out = doctor(one_model_config(tmp_path, "budgets: {limits: [{name: d, usd: 5, window: {rolling: 2h}}]}"))
    assert "budgets.limits[0].window" not in out, out


def test_a_misspelt_privacy_detector_names_the_one_it_is_close_to(tmp_path, monkeypatch):
    """`detectors: [EMAIL, CREDITCARD]` listed 24 entity names and left the user to find EMAIL_ADDRESS and CREDIT_CARD."""
    monkeypatch.chdir(tmp_path)
    out = doctor(one_model_config(tmp_path, "privacy: {classes: {mine: {detectors: [EMAIL, CREDITCARD, PERSON]}}}"))
    line = next((x for x in out.splitlines() if "classes.mine.detectors" in x), "")
    assert "`EMAIL` (did you mean `EMAIL_ADDRESS`?)" in line and "`CREDITCARD` (did you mean `CREDIT_CARD`?)" in line, out


def test_a_config_that_is_a_list_says_what_the_top_level_holds(tmp_path):
    """A config pasted as a list (`- providers: ...`) or a bare word said only "the top level must be a mapping"."""
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    for text, found in (("- providers: {}\n- models: {}\n", "a list"), ("tierwise\n", "a str")):
        try:
            parse_config(text, file="t.yaml")
        except ConfigError as e:
            assert f"found {found}" in str(e) and "`providers:`, `models:`, `routes:`" in str(e), str(e)
        else:
            raise AssertionError(f"{text!r} was accepted")
