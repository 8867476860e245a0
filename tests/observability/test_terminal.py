"""`tierwise top --once` against a running gateway, and `tierwise report --plot out.png`."""

from __future__ import annotations

import sys

import yaml
from click.testing import CliRunner

from tests.doubles import Fail, Reply
from tests.gateway.conftest import oai
from tests.observability.conftest import MSG
from tierwise.cli import main


def test_top_once_shows_the_gateway(two_tier, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("OBS_VIEWER_KEY", "viewer-key-2")
    monkeypatch.setenv("OBS_GW_KEY", "gw-key-2")
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"]},
                 observability={"dashboard": {"enabled": True, "viewer_keys_env": ["OBS_VIEWER_KEY"]}})
    anthropic_up.script(Fail(503, "busy"))  # a fallback: the decision shows per route
    openai_up.script(Reply(text="local", usage=(5, 1)))
    oai(g, api_key="gw-key-2").chat.completions.create(model="main", messages=MSG)
    anthropic_up.script(Reply(text="hi", usage=(10, 2)))
    rid = oai(g, api_key="gw-key-2").chat.completions.with_raw_response.create(
        model="main", messages=MSG).headers["x-tierwise-request-id"]
    runner = CliRunner()
    out = runner.invoke(main, ["top", "--once", "--url", g.url, "--key", "viewer-key-2"], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    for text in ("deployments", "frontier", "local", "closed", "main", "fallback", rid, "call:frontier:ok",
                 "fallback 0.1"):
        assert text in out.output
    # printed to a pipe (no COLUMNS): tables as wide as their content, not padded to 1000 columns
    piped = runner.invoke(main, ["top", "--once", "--url", g.url, "--key", "viewer-key-2"], env={"COLUMNS": None})
    assert piped.exit_code == 0 and rid in piped.output
    assert max(len(line) for line in piped.output.splitlines()) < 400
    # a gateway key: refused with what to use instead (it may read its own requests only)
    out = runner.invoke(main, ["top", "--once", "--url", g.url, "--key", "gw-key-2"])
    assert out.exit_code == 1 and "viewer key" in out.output and "Traceback" not in out.output
    # no key: a clear message, not a traceback
    out = runner.invoke(main, ["top", "--once", "--url", g.url], env={"TIERWISE_KEY": ""})
    assert out.exit_code == 1 and "wants an admin or viewer key" in out.output


def test_top_finds_the_configs_admin_key_and_says_what_to_do_when_nothing_answers(two_tier, monkeypatch, tmp_path):
    # Before: only --key (the key itself, on a command line every user of the machine can read in `ps`) or
    # $TIERWISE_KEY; a team whose admin key is in ADMIN_KEY was told "--key or $TIERWISE_KEY". And a gateway not
    # running was "cannot reach URL: [Errno 111] Connection refused", with nothing to do next.
    monkeypatch.setenv("OBS_ADMIN_KEY", "admin-key-3")
    monkeypatch.setenv("OBS_GW_KEY", "gw-key-3")
    monkeypatch.delenv("TIERWISE_KEY", raising=False)
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"], "admin_keys_env": ["OBS_ADMIN_KEY"]},
                 observability={"dashboard": {"enabled": True}})
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump(g.cfg.model_dump(exclude={"source", "base_dir"}), sort_keys=False))
    out = CliRunner().invoke(main, ["top", "--once", "-c", str(cfg), "--url", g.url])
    assert out.exit_code == 0 and "deployments" in out.output, out.output
    monkeypatch.delenv("OBS_ADMIN_KEY")
    out = CliRunner().invoke(main, ["top", "--once", "-c", str(cfg), "--url", g.url])
    assert out.exit_code == 1 and "export $TIERWISE_KEY or $OBS_ADMIN_KEY, or --key-env NAME" in out.output
    monkeypatch.setenv("MY_VIEWER", "admin-key-3")
    out = CliRunner().invoke(main, ["top", "--once", "-c", str(cfg), "--url", g.url, "--key-env", "MY_VIEWER"])
    assert out.exit_code == 0, out.output
    g.stop()
    out = CliRunner().invoke(main, ["top", "--once", "-c", str(cfg), "--url", g.url])
    assert out.exit_code == 1 and "start the gateway (`tierwise serve`), or pass --url" in out.output


def test_top_says_when_there_is_no_dashboard(two_tier):
    g = two_tier()
    out = CliRunner().invoke(main, ["top", "--once", "--url", g.url])
    assert out.exit_code == 1 and "observability.dashboard.enabled" in out.output


def _traffic(two_tier, openai_up, anthropic_up, tmp_path):
    g = two_tier()
    anthropic_up.script(Reply(text="a", usage=(100, 20)), Fail(503, "busy"))
    openai_up.script(Reply(text="b", usage=(100, 20)))
    for _ in range(2):
        oai(g).chat.completions.create(model="main", messages=MSG)
    g.flush()
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump(g.cfg.model_dump(exclude={"source", "base_dir"}), sort_keys=False))
    return cfg


def test_report_plot_writes_a_png(two_tier, openai_up, anthropic_up, tmp_path):
    cfg = _traffic(two_tier, openai_up, anthropic_up, tmp_path)
    out_png = tmp_path / "cost.png"
    r = CliRunner().invoke(main, ["report", "-c", str(cfg), "--plot", str(out_png)])
    assert r.exit_code == 0, r.output
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000


def test_report_plot_shows_a_route_with_a_single_request_and_a_readable_time_axis():
    """A route with one request is one point: a line alone would draw nothing. Requests seconds
    apart get tick labels that differ (minutes alone read the same on every tick)."""
    from tierwise.observability.plot import figure

    t0 = 1_796_000_000.0
    fig = figure({"claude-code": [(t0 + 30, 0.05, 0.0)],
                  "main": [(t0 + i, 0.001 * i, 0.002 * i) for i in range(1, 60, 5)]})
    fig.canvas.draw()
    ax_cost, ax_saved = fig.axes
    [single] = [ln for ln in ax_cost.get_lines() if ln.get_label() == "claude-code"]
    assert single.get_marker() not in (None, "None", "", " ")
    labels = [t.get_text() for t in ax_saved.get_xticklabels() if t.get_text()]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels


def test_report_plot_without_matplotlib_says_so(two_tier, openai_up, anthropic_up, tmp_path, monkeypatch):
    cfg = _traffic(two_tier, openai_up, anthropic_up, tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    r = CliRunner().invoke(main, ["report", "-c", str(cfg), "--plot", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "needs matplotlib" in r.output and "tierwise[plot]" in r.output
    assert not (tmp_path / "x.png").exists()
