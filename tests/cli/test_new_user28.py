"""Session 28's new user: what the first hour met at the command line (bench/RESULTS.md, "New user, session 28")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.doubles import OpenAIDouble
from tierwise.cli import main


def test_doctor_does_not_say_all_good_under_its_own_warnings(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: "! model m: 'qwne' is not among the models p serves ...: every call ..." and then "All good." (exit 0):
    # a new user reads the last line. Warnings still do not fail the check (exit 0), but the last line counts them.
    monkeypatch.chdir(tmp_path)
    with OpenAIDouble(models=["qwen"]) as local:
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
            "providers": {"p": {"kind": "openai", "base_url": local.url + "/v1", "locality": "local"}},
            "models": {"m": {"provider": "p", "model": "qwne", "context_window": 8192}},
            "routes": {"main": ["m"]}, "server": {"port": 1}}))
        r = CliRunner().invoke(main, ["doctor"])
        assert r.exit_code == 0, r.output
        assert "\n! model m: 'qwne'" in r.output, r.output
        assert "All good" not in r.output, r.output
        assert r.output.rstrip().endswith("No check failed, but 1 warning(s) above (marked !) say what may still "
                                          "go wrong."), r.output
        # and with the model the server serves, nothing to warn about
        (tmp_path / "tierwise.yaml").write_text((tmp_path / "tierwise.yaml").read_text().replace("qwne", "qwen"))
        r = CliRunner().invoke(main, ["doctor"])
        assert r.output.rstrip().endswith("All good."), r.output


def test_eval_refuses_an_unknown_router_before_training_the_others(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: `eval gsm8k -r linear -r random` trained linear's 5 folds, then said "unknown router 'random'" (random
    # is a baseline row of every table, not a router spec). Now a usage error before any data is read.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERWISE_DATA", str(tmp_path / "nothing-here"))
    r = CliRunner().invoke(main, ["eval", "gsm8k", "-r", "linear", "-r", "random"])
    assert r.exit_code == 2, r.output
    assert "unknown router 'random' (a baseline row every table has" in r.output, r.output
    assert "training" not in r.output, r.output
    r = CliRunner().invoke(main, ["eval", "gsm8k", "-r", "stak"])
    assert r.exit_code == 2 and "unknown router 'stak'; --router takes one of linear," in r.output, r.output


def test_a_usd_budget_next_to_an_unpriced_remote_model_is_named_at_start_and_by_doctor(tmp_path: Path,
                                                                                     monkeypatch: Any) -> None:
    # Before: a $0.01 budget beside a remote model the price data does not know let every call through (counted as
    # $0); doctor said only that the model's cost is unknown, serve said nothing.
    from tierwise.commands.doctor_models import usd_budgets_blind_to
    from tierwise.config import parse_config

    cfg = {"providers": {"p": {"kind": "anthropic", "base_url": "http://127.0.0.1:1", "locality": "remote"}},
           "models": {"m": {"provider": "p", "model": "no-such-model-x1"},
                      "priced": {"provider": "p", "model": "no-such-model-x2", "price": {"input": 1, "output": 2}}},
           "routes": {"main": ["m", "priced"]}, "budgets": {"limits": [{"name": "daily", "usd": 0.01}]}}
    [line] = usd_budgets_blind_to(parse_config(yaml.safe_dump(cfg), file="t.yaml"))
    assert line.startswith("budget daily caps USD, but model m has no known price: its calls are counted as $0"), \
        line
    cfg["budgets"] = {"limits": [{"name": "daily", "tokens": 1000}]}  # a token cap counts them: nothing to say
    assert usd_budgets_blind_to(parse_config(yaml.safe_dump(cfg), file="t.yaml")) == []
    # serve says it at start
    from tests.cli.test_new_user import _serve_warnings

    cfg["budgets"] = {"limits": [{"name": "daily", "usd": 0.01}]}
    lines = _serve_warnings(tmp_path, yaml.safe_dump(cfg))
    assert any("budget daily caps USD, but model m has no known price" in ln for ln in lines), lines


def test_a_value_sampled_reflective_route_with_an_unpriced_frontier_says_it_will_never_judge(
        tmp_path: Path, monkeypatch: Any) -> None:
    # Before: with the frontier model unknown to the price data, 12 requests to a reflective route judged nothing
    # (a local answer saved "$0", so no verdict was worth buying) and `tierwise boundary` said only "no evidence
    # yet". Now boundary, doctor and serve say why and what to set.
    from tests.cli.test_new_user import _serve_warnings

    monkeypatch.chdir(tmp_path)
    cfg: dict[str, Any] = {
        "providers": {"loc": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "locality": "local"},
                      "p": {"kind": "anthropic", "base_url": "http://127.0.0.1:1", "locality": "remote"}},
        "models": {"small": {"provider": "loc", "model": "tiny"}, "big": {"provider": "p", "model": "no-such-x1"}},
        "routes": {"chat": {"policy": "reflective", "local": "small", "frontier": "big"}}}
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(main, ["boundary"]).output
    assert "no evidence yet" in out and "route chat: its frontier tier (big) has no known price" in out, out
    assert "the route judges nothing" in out, out
    assert any("route chat: its frontier tier (big) has no known price" in ln
               for ln in _serve_warnings(tmp_path, yaml.safe_dump(cfg)))
    for fixed in ({"price": {"input": 3, "output": 15}}, None):
        if fixed is None:  # or the route told what a local answer saves
            cfg["routes"]["chat"]["value"] = {"saving_usd": 0.01}
        else:
            cfg["models"]["big"].update(fixed)
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
        assert "no known price" not in CliRunner().invoke(main, ["boundary"]).output
        cfg["models"]["big"].pop("price", None)


def test_init_names_a_llamacpp_server_on_another_port_after_what_it_is(tmp_path: Path) -> None:
    # Before: `init --local http://127.0.0.1:8128/v1` wrote a provider `local-server` although the server's model
    # list says `owned_by: llamacpp` (and gives its window, which init did read).
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tierwise.starter import detect

    class Models(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps({"object": "list", "data": [{"id": "tiny.gguf", "object": "model", "owned_by": "llamacpp",
                                                           "meta": {"n_ctx": 4096}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        found = detect(f"http://127.0.0.1:{srv.server_address[1]}/v1")
    finally:
        srv.shutdown()
    assert [f[0] for f in found["local"]] == ["llamacpp"], found  # type: ignore[union-attr]
    assert found["local_window"] == 4096
