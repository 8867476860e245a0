"""`tierwise eval` and `tierwise replay-serve` on the tiny fixture."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from pathlib import Path

import httpx2 as httpx
import orjson
from aiohttp import web
from click.testing import CliRunner

from tests.harness import free_port, unavailable
from tierwise.cli import main
from tierwise.evaluation.loaders import load_jsonl
from tierwise.evaluation.replay_server import replay_app

FIXTURE = str(Path(__file__).parent / "fixtures" / "tiny_outcomes.jsonl")


def test_eval_prints_the_table_and_saves_a_router(tmp_path):
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "-r", "knn-lsa", "-k", "3", "--oracle",
                                    "--save", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    for name in ("random", "prompt-length", "linear (3-fold CV)", "knn-lsa (3-fold CV)", "oracle", "APGR"):
        assert name in res.output
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.npz").exists()
    again = CliRunner().invoke(main, ["eval", FIXTURE, "-r", str(tmp_path / "r.json"), "--json"])
    assert again.exit_code == 0, again.output
    out = json.loads(again.output)
    saved = next(r for r in out["rows"] if "saved linear" in r["router"])
    assert saved["apgr"] > 0.6  # scored on its own training data: it learnt the hard/easy split
    oracle_free = {r["router"] for r in out["rows"]}
    assert "oracle" not in oracle_free and out["n"] == 48


def test_eval_gives_each_apgr_a_bootstrap_interval():
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "-k", "3", "--ci", "200", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["router"]: r for r in json.loads(res.output)["rows"]}
    for r in rows.values():
        assert r["apgr_ci_low"] <= r["apgr"] <= r["apgr_ci_high"]
    assert rows["random"]["apgr_ci_high"] - rows["random"]["apgr_ci_low"] > 0.1  # 48 queries: a wide interval
    table = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "200"])
    assert "APGR 95% interval" in table.output and " – " in table.output
    plain = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "0", "--json"])
    assert all("apgr_ci_low" not in r for r in json.loads(plain.output)["rows"])
    bad = CliRunner().invoke(main, ["eval", FIXTURE, "--ci", "-1"])
    assert bad.exit_code == 2 and "--ci" in bad.output


def test_eval_bad_input_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "cannot read" in res.output
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "bogus"])
    assert res.exit_code == 2 and "unknown router" in res.output
    res = CliRunner().invoke(main, ["eval", "nosuchbench"])
    assert res.exit_code == 2 and "unknown benchmark" in res.output


def test_eval_plot_writes_png(tmp_path):
    if importlib.util.find_spec("matplotlib") is None:
        unavailable("matplotlib is not installed (pip install -e '.[test]')")
    res = CliRunner().invoke(main, ["eval", FIXTURE, "-r", "linear", "-k", "3", "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_replay_server_serves_recorded_answers_with_outcomes():
    data = load_jsonl(FIXTURE)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(replay_app(data))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/v1/models")
            break
        except httpx.TransportError:
            threading.Event().wait(0.02)
    try:
        msgs = [{"role": "user", "content": data.prompts[0]}]
        weak = httpx.post(url + "/v1/chat/completions", json={"model": "weak", "messages": msgs}).json()
        assert weak["choices"][0]["message"]["content"] == data.weak_responses[0]
        assert weak["tierwise_replay"]["outcome"] == data.weak[0]
        strong = httpx.post(url + "/v1/chat/completions", json={"model": "strong", "messages": msgs, "stream": True})
        assert strong.headers["x-tierwise-replay-outcome"] == f"{data.strong[0]:g}"
        assert data.strong_responses[0] in strong.text and strong.text.rstrip().endswith("data: [DONE]")
        miss = httpx.post(url + "/v1/chat/completions", json={"model": "weak", "messages": [
            {"role": "user", "content": "not in the data"}]})
        assert miss.status_code == 400 and miss.json()["error"]["type"] == "invalid_request_error"
        assert httpx.post(url + "/v1/chat/completions", content=b"{").status_code == 400
        stats = orjson.loads(httpx.get(url + "/replay/stats").content)
        assert stats["served"] == 2 and stats["strong_calls"] == 1 and stats["misses"] == 1
        assert stats["mean_outcome"] == (data.weak[0] + data.strong[0]) / 2
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)


def test_replay_serve_on_port_0_says_the_port_it_got_and_a_taken_port_is_one_line(tmp_path):
    # Before: `--port 0` printed "at http://127.0.0.1:0/v1" (the real port was nowhere), and a taken port was an
    # aiohttp traceback.
    import os
    import socket
    import subprocess
    import sys

    env = {**os.environ, "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "tierwise.cli", "replay-serve", FIXTURE]
    proc = subprocess.Popen(command + ["--port", "0"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert port != 0, line
        assert httpx.get(f"http://127.0.0.1:{port}/replay/stats", timeout=30).json()["served"] == 0
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        res = subprocess.run(command + ["--port", str(taken.getsockname()[1])], env=env, capture_output=True,
                             text=True, timeout=60)
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().endswith("the port is already in use (another gateway?): `--port N` picks another")
