"""Two `tierwise serve` replicas on one Redis budget, one with its clock two minutes ahead (a host without NTP):
the skewed replica does not give back the other's live reservation.

Before (session 24, team-ops): reservation deadlines and the sweep that gives back a killed gateway's
reservations used each gateway's own clock, so a replica ahead by more than `reservation_ttl` took every other
replica's reservation in flight for a dead one, and the budget admitted past its cap in their place (50 clients
over three replicas, one 120 s ahead, `reservation_ttl: 20`: $2.038 spent of a $2 budget, five reservations
over the documented one; bench/team_chaos.py --scenario skew). Deadlines are now on Redis's clock.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.doubles import AnthropicDouble, Delay, Reply
from tests.gateway.conftest import ant
from tests.harness import ServeProcess, free_port

from .test_race import frontier_gateway

SKEW_S = 120.0


@pytest.fixture
def slow_upstream() -> Iterator[AnthropicDouble]:
    d = AnthropicDouble()
    d.default = Delay(4.0, Reply(text="answer", usage=(40, 400)))  # the first request is in flight meanwhile
    d.start()
    yield d
    d.stop()


def serve(tmp: Path, up: str, redis_url: str, skew: float = 0.0) -> ServeProcess:
    port = free_port()
    cfg = tmp / f"tierwise-{port}.yaml"
    cfg.write_text(frontier_gateway(port, tmp, up) + f"""budgets:
  store: {{backend: redis, redis_url: "{redis_url}"}}
  reservation_ttl: 20
  limits:
    - {{name: team, usd: 0.005, window: day}}
""")
    if not skew:
        return ServeProcess(cfg, port, tmp)
    folder = tmp / "skewed-clock"
    folder.mkdir(exist_ok=True)
    # The process's wall clock runs `skew` seconds ahead (what a host without NTP shows); ServeProcess hands the
    # test's sys.path on as PYTHONPATH, so the sitecustomize there is imported at the replica's start.
    (folder / "sitecustomize.py").write_text(
        "import time as _t\n"
        f"_o, _on, _s = _t.time, _t.time_ns, {skew!r}\n"
        "_t.time = lambda: _o() + _s\n"
        "_t.time_ns = lambda: _on() + int(_s * 1e9)\n")
    sys.path.insert(0, str(folder))
    try:
        return ServeProcess(cfg, port, tmp)
    finally:
        sys.path.remove(str(folder))


def test_a_replica_whose_clock_is_ahead_does_not_free_the_others_reservations(own_redis, slow_upstream, tmp_path):
    r = own_redis()
    a = serve(tmp_path, slow_upstream.url, r.url)
    b = serve(tmp_path, slow_upstream.url, r.url, skew=SKEW_S)
    try:
        answers: list[str] = []
        t = threading.Thread(target=lambda: answers.append(ant(a, timeout=60).messages.create(
            model="main", max_tokens=500, messages=[{"role": "user", "content": "first"}]).content[0].text))
        t.start()
        # The first request's reservation ($0.0076 worst case) holds the $0.005 budget while the upstream answers.
        assert slow_upstream.wait_until(lambda: len(slow_upstream.requests) == 1, timeout=30)
        with pytest.raises(anthropic.RateLimitError) as e:
            ant(b, timeout=60).messages.create(model="main", max_tokens=500,
                                               messages=[{"role": "user", "content": "second"}])
        msg = e.value.body["error"]["message"]  # (spent, the first request is still in flight: review34b's 429 says so)
        assert "budget 'team' is spent" in msg or "budget 'team' is held by requests in flight" in msg
        t.join(60)
        assert answers == ["answer"]
        assert len(slow_upstream.requests) == 1  # the skewed replica's request never reached the upstream
    finally:
        a.stop()
        b.stop()
