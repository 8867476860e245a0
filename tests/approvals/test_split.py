"""The `split` policy: weighted, sticky, deterministic arms, recorded on the trace and in the ledger."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from typing import Any

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import make_config, two_tier_config
from tierwise.canonical import Message, Request, TextBlock
from tierwise.errors import ConfigError
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger
from tierwise.policies.base import Context
from tierwise.server.build import build_gateway
from tierwise.trace import Trace


def split_cfg(up_local: str, up_remote: str, arms: dict[str, Any] | None = None, **split: Any) -> dict[str, Any]:
    arms = arms or {"control": {"target": "frontier", "weight": 70}, "treatment": {"target": "local", "weight": 30}}
    return two_tier_config(up_local, up_remote, routes={"ab": {"policy": "split", "arms": arms, **split}},
                           server={"default_route": "ab"})


def choose(split: Any, headers: dict[str, str] | None = None, user: str | None = None, rid: str = "req_1",
           key: str | None = None) -> tuple[str, Context]:
    req = Request(model="ab", messages=[Message("user", [TextBlock("hi")])], headers=headers or {}, user=user)
    ctx = Context(Trace(rid, "ab"), lambda n: None)  # type: ignore[arg-type,return-value]
    if key:
        ctx.notes["key_name"] = key  # what the HTTP edge leaves: the gateway key's name
    split.choose(req, ctx)
    return ctx.notes["arm"], ctx


def binomial_ok(k: int, n: int, p: float) -> bool:
    """Within 4.5 standard deviations: a fair splitter misses this about once in 150,000 runs (and
    the hashing is deterministic, so a given config passes or fails every time)."""
    return abs(k - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))


def test_weights_are_honoured_over_2000_sessions(tmp_path):
    cfg = split_cfg("http://127.0.0.1:9/v1", "http://127.0.0.1:9", arms={
        "a": {"target": "frontier", "weight": 0.5}, "b": {"target": "local", "weight": 0.3},
        "c": {"target": "frontier", "weight": 0.2}})
    split = build_gateway(make_config(cfg, tmp_path)).resolve("ab")
    n = 2000
    counts = Counter(choose(split, {"x-tierwise-session": f"session-{i}"})[0] for i in range(n))
    assert set(counts) == {"a", "b", "c"}
    for arm, p in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert binomial_ok(counts[arm], n, p), (arm, counts)
    # A different salt is a different experiment: the assignment of many sessions changes.
    resalted = build_gateway(make_config({**cfg, "routes": {"ab": {**cfg["routes"]["ab"], "salt": "exp-2"}}},
                                         tmp_path)).resolve("ab")
    moved = sum(choose(split, {"x-tierwise-session": f"s{i}"})[0] != choose(resalted, {"x-tierwise-session": f"s{i}"})[0]
                for i in range(300))
    assert moved > 60


def test_sticky_by_user_then_key_then_not_sticky(tmp_path):
    cfg = split_cfg("http://127.0.0.1:9/v1", "http://127.0.0.1:9", sticky="user")
    split = build_gateway(make_config(cfg, tmp_path)).resolve("ab")
    arms = {choose(split, user="alice", rid=f"r{i}")[0] for i in range(20)}
    assert len(arms) == 1  # the same user always lands on the same arm
    assert {choose(split, {"x-tierwise-user": "alice"}, rid=f"r{i}")[0] for i in range(5)} == arms
    by_key = {k: {choose(split, key=k, rid=f"r{i}")[0] for i in range(5)} for k in ("team-a", "team-b", "team-c")}
    assert all(len(v) == 1 for v in by_key.values())  # no user, no session: the key's name keeps the arm
    assert choose(split, key="team-a", rid="r9")[1].trace.steps[-1].detail["sticky"] == "key"
    _, ctx = choose(split, rid="r1")
    assert "not sticky" in ctx.trace.steps[-1].reason and ctx.trace.steps[-1].detail["sticky"] == "request"
    by_rid = Counter(choose(split, rid=f"req_{i}")[0] for i in range(400))  # no identity: spread by request id
    assert binomial_ok(by_rid["control"], 400, 0.7)


@pytest.mark.parametrize("arms, where", [
    ({"a": {"target": "frontier", "weight": 0}, "b": {"target": "local", "weight": 1}}, "routes.ab.arms.a.weight"),
    ({"a": {"target": "frontier", "weight": "lots"}, "b": {"target": "local", "weight": 1}}, "routes.ab.arms.a.weight"),
    ({"a": {"target": "frontier", "weight": float("inf")}, "b": {"target": "local", "weight": 1}}, "routes.ab.arms.a.weight"),
    ({"a": {"target": "frontier", "weight": 1}}, "routes.ab.arms"),
    ({"a": {"target": "frontier", "weight": 1}, "b": {"target": "local", "wieght": 1}}, "routes.ab.arms.b.wieght"),
    ({"a": {"target": "frontier", "weight": 1}, "b": {"target": "nowhere", "weight": 1}}, "routes.ab"),
])
def test_config_errors_name_the_key(tmp_path, arms, where):
    with pytest.raises(ConfigError) as e:
        make_config(split_cfg("http://127.0.0.1:9/v1", "http://127.0.0.1:9", arms=arms), tmp_path)
    assert where in e.value.message


def test_sessions_stick_across_replicas_and_apis_and_the_ledger_keeps_the_arm(gateway, openai_up, anthropic_up):
    openai_up.default = Reply(text="local answer", usage=(10, 5))
    anthropic_up.default = Reply(text="frontier answer", usage=(10, 5))
    cfg = split_cfg(openai_up.url, anthropic_up.url)
    a, b = gateway(cfg), gateway(cfg)  # two replicas: no shared state (they write one ledger file here)
    oa, ob, an = oai(a), oai(b), ant(b)
    target = {"control": "frontier", "treatment": "local"}
    sent: list[tuple[str, str]] = []  # (session, request id)
    msg = [{"role": "user", "content": "q"}]
    for i in range(24):
        h = {"x-tierwise-session": f"sess-{i}"}
        for raw in (oa.chat.completions.with_raw_response.create(model="ab", messages=msg, extra_headers=h),
                    an.messages.with_raw_response.create(model="ab", max_tokens=20, messages=msg, extra_headers=h),
                    ob.chat.completions.with_raw_response.create(model="ab", messages=msg, extra_headers=h)):
            sent.append((h["x-tierwise-session"], raw.headers["x-tierwise-request-id"]))
    a.flush()
    b.flush()
    seen: dict[str, set[str]] = {}
    for session, rid in sent:
        rec = a.ledger.get(rid)
        assert rec.decision == target[rec.arm]  # the arm's target answered
        step = next(s for s in rec.steps if s.get("detail", {}).get("arm"))  # the trace says which arm, and why
        assert step["detail"] == {"arm": rec.arm, "sticky": "session"}
        seen.setdefault(session, set()).add(rec.arm)
    assert all(len(v) == 1 for v in seen.values())  # a session keeps its arm on both replicas and both APIs
    assert {next(iter(v)) for v in seen.values()} == {"control", "treatment"}


def test_a_ledger_without_the_arm_column_stays_readable(tmp_path):
    path = str(tmp_path / "old.db")
    Ledger(path).close()
    with sqlite3.connect(path) as db:  # what an older version wrote: no `arm` column
        db.execute("ALTER TABLE requests DROP COLUMN arm")
        db.execute("INSERT INTO requests (request_id, ts, route, steps, extra) VALUES ('old', 1.0, 'r', '[]', '{}')")
    led = Ledger(path)
    assert led.get("old").arm is None
    led.submit(LedgerRecord(request_id="new", ts=2.0, route="r", arm="b"))
    led.flush()
    assert led.get("new").arm == "b"
    led.close()
