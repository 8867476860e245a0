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
