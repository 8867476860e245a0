"""`tierwise report --by arm`: figures per arm and their differences, checked against known traffic."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import numpy as np
import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tierwise.cli import main
from tierwise.ledger.arm_report import arm_report
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger

from .test_split import split_cfg

A_COST = [0.01 + 0.001 * i for i in range(10)]
A_LAT = [100.0 + 10 * i for i in range(10)]
B_COST = [0.002] * 20
B_LAT = [50.0 + 5 * i for i in range(20)]


def _verdict(ok: bool) -> dict[str, Any]:
    return {"kind": "verdict", "name": "json", "ok": ok}


def known_ledger(path: str) -> None:
    led = Ledger(path)
    for i in range(10):  # arm a: 2 errors, 6 judged requests passed and 2 failed, 8 rated
        steps = [_verdict(True)] if i < 6 else [_verdict(True), _verdict(False)] if i < 8 else []
        fb = ([{"rating": "good"}] if i < 4 else [{"rating": "poor"}, {"rating": "good"}] if i == 4 else
              [{"rating": "acceptable"}] if i == 5 else [{"rating": "poor"}] if i < 8 else [])
        led.submit(LedgerRecord(request_id=f"a{i}", ts=1000.0 + i, route="ab", arm="a", cost_usd=A_COST[i],
                                latency_ms=A_LAT[i], status=500 if i in (3, 7) else 200, steps=steps,
                                extra={"feedback": fb} if fb else {}))
    for i in range(20):  # arm b: no error, 18 of 20 judged passed, every request rated good
        led.submit(LedgerRecord(request_id=f"b{i}", ts=2000.0 + i, route="ab", arm="b", cost_usd=B_COST[i],
                                locality="local" if i < 15 else "remote",
                                latency_ms=B_LAT[i], steps=[_verdict(i >= 2)], extra={"feedback": [{"rating": "good"}]}))
    led.submit(LedgerRecord(request_id="plain", ts=3000.0, route="other", cost_usd=9.0))  # no arm: not in the report
    led.close()


def inside(ci: list[float], v: float) -> bool:
    return ci[0] - 1e-12 <= v <= ci[1] + 1e-12


def test_report_by_arm_against_known_traffic(tmp_path):
    path = str(tmp_path / "ledger.db")
    known_ledger(path)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump({"ledger": {"path": path}}))
    res = CliRunner().invoke(main, ["report", "-c", str(tmp_path / "tw.yaml"), "--by", "arm", "--json"])
    assert res.exit_code == 0, res.output
    rep = orjson.loads(res.output)
    [route] = rep["routes"]
    assert route["route"] == "ab" and route["baseline"] == "a"
    a, b = route["arms"]
    assert (a["arm"], a["requests"], b["arm"], b["requests"]) == ("a", 10, "b", 20)
    assert a["cost_usd"]["total"] == pytest.approx(sum(A_COST)) and a["cost_usd"]["mean"] == pytest.approx(0.0145)
    assert inside(a["cost_usd"]["mean_ci95"], 0.0145) and a["cost_usd"]["mean_ci95"][0] >= min(A_COST)
    assert b["cost_usd"]["mean_ci95"] == pytest.approx([0.002, 0.002])  # no spread, no uncertainty
    assert a["latency_ms"]["p50"] == pytest.approx(145.0) and a["latency_ms"]["p95"] == pytest.approx(185.5)
    assert b["latency_ms"]["p50"] == pytest.approx(float(np.percentile(B_LAT, 50)))
    assert inside(a["latency_ms"]["p95_ci95"], 185.5) and a["latency_ms"]["p95_ci95"][1] <= 190.0
    # Shares with Wilson intervals (2 of 10: the textbook 0.057 .. 0.510).
    assert a["errors"]["share"] == 0.2 and a["errors"]["ci95"] == pytest.approx([0.0567, 0.5098], abs=1e-4)
    assert a["verdicts"] == {"k": 6, "n": 8, "share": 0.75, "ci95": pytest.approx([0.4093, 0.9285], abs=1e-4)}
    assert b["verdicts"]["k"] == 18 and b["verdicts"]["n"] == 20
    assert b["local"]["share"] == 0.75 and a["local"]["share"] == 0
    # Feedback: the last rating of each rated request (a4 was poor, then good).
    assert a["feedback"]["rated"] == 8 and a["feedback"]["mean_score"] == pytest.approx((5 + 0.5) / 8)
    assert a["feedback"]["good"]["k"] == 5 and b["feedback"]["mean_score"] == 1.0
    [d] = route["differences"]
    assert (d["arm"], d["baseline"]) == ("b", "a")
    assert d["mean_cost_usd"]["diff"] == pytest.approx(0.002 - 0.0145) and d["mean_cost_usd"]["ci95"][1] < 0
    assert d["latency_p50_ms"]["diff"] == pytest.approx(float(np.percentile(B_LAT, 50)) - 145.0)
    assert d["error_share"]["diff"] == pytest.approx(-0.2) and inside(d["error_share"]["ci95"], -0.2)
    assert d["error_share"]["ci95"][1] > 0  # 2 of 10 against 0 of 20: not a clear difference
    assert d["local_share"]["diff"] == 0.75 and d["local_share"]["ci95"][0] > 0.3
    assert d["feedback_mean_score"]["diff"] == pytest.approx(1.0 - 5.5 / 8) and d["feedback_mean_score"]["ci95"][0] > 0
    again = CliRunner().invoke(main, ["report", "-c", str(tmp_path / "tw.yaml"), "--by", "arm", "--json"])
    assert orjson.loads(again.output) == rep  # a fixed seed: the same ledger, the same report
    base_b = orjson.loads(CliRunner().invoke(main, ["report", "-c", str(tmp_path / "tw.yaml"), "--by", "arm",
                                                    "--baseline", "b", "--json"]).output)
    assert base_b["routes"][0]["differences"][0]["mean_cost_usd"]["diff"] == pytest.approx(0.0125)
    text = CliRunner().invoke(main, ["report", "-c", str(tmp_path / "tw.yaml"), "--by", "arm"])
    assert text.exit_code == 0 and "route ab" in text.output and "b - a: mean cost -0.012500" in text.output


def test_report_by_arm_from_split_traffic(gateway, openai_up, anthropic_up, tmp_path):
    openai_up.default = Reply(text="local", usage=(10, 5))
    anthropic_up.default = Reply(text="frontier", usage=(10, 5))
    g = gateway(split_cfg(openai_up.url, anthropic_up.url))
    client = oai(g)
    arms: dict[str, list[str]] = {}
    for i in range(40):
        raw = client.chat.completions.with_raw_response.create(
            model="ab", messages=[{"role": "user", "content": "q"}], extra_headers={"x-tierwise-session": f"s{i}"})
        rid = raw.headers["x-tierwise-request-id"]
        g.flush()
        arm = g.ledger.get(rid).arm
        arms.setdefault(arm, []).append(rid)
        if arm == "treatment":  # the local arm's answers are rated poor, the frontier's good
            r = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": rid, "rating": "poor"}, timeout=5)
            assert r.status_code == 200, r.text
    rep = arm_report(g.ledger)
    by = {a["arm"]: a for a in rep["routes"][0]["arms"]}
    assert {k: v["requests"] for k, v in by.items()} == {k: len(v) for k, v in arms.items()}
    assert by["control"]["cost_usd"]["mean"] == pytest.approx((10 * 3 + 5 * 15) / 1e6)  # frontier prices
    assert by["treatment"]["cost_usd"]["total"] == 0  # the local model costs nothing
    assert by["treatment"]["feedback"]["mean_score"] == 0 and by["control"]["feedback"]["rated"] == 0
    [d] = rep["routes"][0]["differences"]
    assert d["mean_cost_usd"]["diff"] == pytest.approx(-(10 * 3 + 5 * 15) / 1e6)
