"""A `day` (or `month`) budget shared on Redis by two replicas whose clocks differ: the window they count in is
Redis's, not each replica's. Before (session 25's leftovers): the slot of a calendar window came from the
replica's own clock, so a replica whose clock had passed UTC midnight counted in tomorrow's bucket, empty, and
spent the whole day's budget again while the other replicas refused (session 24 put the reservation deadlines
on Redis's `TIME`; the windows stayed on the hosts'). Real Redis (db 9), two `tierwise serve` processes, one
with its wall clock past the next UTC midnight."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.doubles import AnthropicDouble, Reply
from tests.gateway.conftest import ant
from tests.harness import ServeProcess, drop_redis_keys, free_port, needs_redis

from .test_race import frontier_gateway

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture
def up() -> Iterator[AnthropicDouble]:
    d = AnthropicDouble()
    d.default = Reply(text="answer", usage=(40, 400))  # $0.00612 an answer: one spends the $0.005 budget
    d.start()
    yield d
    d.stop()


@pytest.fixture
def prefix() -> Iterator[str]:
    p = f"tw-test-window-clock-{uuid.uuid4().hex[:8]}:"
    yield p
    drop_redis_keys(REDIS_URL, p)


def serve(tmp: Path, up: str, prefix: str, window: str, skew: float = 0.0) -> ServeProcess:
    port = free_port()
    cfg = tmp / f"tierwise-{port}.yaml"
    cfg.write_text(frontier_gateway(port, tmp, up) + f"""budgets:
  store: {{backend: redis, redis_url: "{REDIS_URL}", key_prefix: "{prefix}"}}
  limits:
    - {{name: team, usd: 0.005, window: {window}}}
""")
    if not skew:
        return ServeProcess(cfg, port, tmp)
    folder = tmp / f"clock-{port}"
    folder.mkdir()
    # The replica's wall clock runs `skew` seconds ahead (a host without NTP); ServeProcess hands the test's
    # sys.path on as PYTHONPATH, so this sitecustomize is imported at the replica's start.
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


def _ask(g: ServeProcess, text: str) -> str:
    return str(ant(g, timeout=60).messages.create(model="main", max_tokens=500,
                                                 messages=[{"role": "user", "content": text}]).content[0].text)


@needs_redis
@pytest.mark.parametrize("window", ["day", "month"])
def test_a_replica_whose_clock_is_in_the_next_window_counts_in_the_same_one(window, up, prefix, tmp_path):
    now = time.time()
    t = time.gmtime(now)
    if window == "day":
        ahead = 86400 - (now % 86400) + 3600  # an hour into tomorrow (UTC)
    else:  # an hour into next month
        y, m = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        import calendar

        ahead = calendar.timegm((y, m, 1, 0, 0, 0)) - now + 3600
    a = serve(tmp_path, up.url, prefix, window)
    b = serve(tmp_path, up.url, prefix, window, skew=ahead)
    try:
        assert _ask(a, "first") == "answer"  # spends the $0.005 budget ($0.00612)
        with pytest.raises(anthropic.RateLimitError) as e:
            _ask(b, "second")  # before: tomorrow's (next month's) bucket, empty: answered
        msg = e.value.body["error"]["message"]  # (spent, or held, while the first request's settlement is on its way)
        assert "budget 'team' is spent" in msg or "budget 'team' is held by requests in flight" in msg
        assert len(up.requests) == 1
    finally:
        a.stop()
        b.stop()
