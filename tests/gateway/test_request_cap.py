"""Model-bound requests in flight per client, streamed or not (`server.limits.max_requests_per_client`,
server/stream_cap.py).

Before, the stream cap counted streams only: one address sending 300 non-streamed calls at once held all 256
connections of a provider's pool for up to `timeouts.total` (600 s), and every other client got 503
(review29b; bench/stream_cap_probe.py --whole). The upstream double holds every answer (`Gate`) until the test
releases it; the clients are the official SDKs over real HTTP, from loopback addresses of their own.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest

from tests.doubles.script import Fail, Gate, Hold, Reply
from tests.gateway.client_caps import MSG, ant_from, assert_refused, oai_from
from tests.harness import wait_for


def _gw(gateway, openai_up, **limits):
    return gateway(
        {
            "server": {"default_route": "local", "limits": {"max_requests_per_client": 2, **limits}},
            "ledger": {"enabled": False},
            "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}},
            "models": {"local": {"provider": "loc", "model": "m"}},
        }
    )


def _oai(g, source="127.0.0.1", timeout=30.0) -> openai.OpenAI:
    return oai_from(g, source, timeout=timeout)


def _ant(g, source="127.0.0.1") -> anthropic.Anthropic:
    return ant_from(g, source)


def _held(g) -> dict[str, int]:
    return dict(g.on_loop(lambda: dict(g.app.calls.open)))


def _ask(g, source="127.0.0.1", n: int = 1) -> str:
    return (
        _oai(g, source).chat.completions.create(model="local", messages=MSG, n=n).choices[0].message.content
        or ""
    )


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses"])
def test_one_client_cannot_hold_more_calls_than_its_cap(gateway, openai_up, api):
    """Cap 2: with two non-streamed calls of one address held upstream, its third (streamed or not) is refused
    with 429 + Retry-After in the client's API schema before any upstream call (before: served, as many as the
    client had connections); another address is not held back by it; once the calls end the client may ask
    again, and nothing stays counted."""
    g = _gw(gateway, openai_up)
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="held answer"))
    pool = ThreadPoolExecutor(4)
    try:
        held = [pool.submit(_ask, g) for _ in range(2)]
        # A call counts before it reaches the upstream: wait for both, or a late arrival reads as a leak.
        assert wait_for(lambda: _held(g) == {"127.0.0.1": 2} and len(openai_up.requests) == 2)
        calls = len(openai_up.requests)
        for stream in (False, True):
            assert_refused(g, api, stream, "max_requests_per_client")
        assert len(openai_up.requests) == calls  # refused before any upstream call
        other = pool.submit(_ask, g, "127.0.0.2")
        assert wait_for(lambda: _held(g) == {"127.0.0.1": 2, "127.0.0.2": 1})
        release.set()
        assert [f.result(timeout=30) for f in [*held, other]] == ["held answer"] * 3
        assert wait_for(lambda: _held(g) == {})
        openai_up.default = Reply(text="again")
        assert [_ask(g) for _ in range(3)] == ["again"] * 3  # the counts were given back
        assert _held(g) == {}
    finally:
        release.set()
        pool.shutdown()


def test_n_choices_count_as_n(gateway, openai_up):
    """`n` choices can be n upstream calls at once (on an Anthropic upstream): a request counts n. Cap 3: one
    held n=2 request leaves room for one more call, not for another n=2; a request asking more than the cap
    alone is served when its client holds nothing."""
    g = _gw(gateway, openai_up, max_requests_per_client=3)
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="held answer"))
    pool = ThreadPoolExecutor(2)
    try:
        first = pool.submit(_ask, g, "127.0.0.1", 2)
        assert wait_for(lambda: _held(g) == {"127.0.0.1": 2})
        with pytest.raises(openai.RateLimitError):
            _ask(g, n=2)
        second = pool.submit(_ask, g)
        assert wait_for(lambda: _held(g) == {"127.0.0.1": 3})
        release.set()
        assert first.result(timeout=30) and second.result(timeout=30)
        assert wait_for(lambda: _held(g) == {})
        openai_up.default = Reply(text="big")
        assert _ask(g, n=4) == "big"
        assert _held(g) == {}
    finally:
        release.set()
        pool.shutdown()


def test_every_way_out_gives_the_count_back(gateway, openai_up):
    """An upstream error, a refusal at the stream cap and a client that leaves mid-call each give the
    request's count back, once: afterwards the client has its whole cap again."""
    g = _gw(gateway, openai_up, max_streams_per_client=1)
    openai_up.default = Fail(500)
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            _ask(g)
    assert _held(g) == {}
    release = threading.Event()
    try:
        openai_up.default = Hold(1, release, Reply(text="one two"))
        held = _oai(g).chat.completions.create(model="local", messages=MSG, stream=True)
        next(iter(held))
        with pytest.raises(openai.RateLimitError) as e:  # refused at the stream cap, after the call count
            _oai(g).chat.completions.create(model="local", messages=MSG, stream=True)
        assert "max_streams_per_client" in e.value.message
        assert _held(g) == {"127.0.0.1": 1}
        held.close()
        assert wait_for(lambda: _held(g) == {})
        openai_up.default = Gate(release, Reply(text="x"))
        with pytest.raises(openai.APITimeoutError):  # the client leaves while its call is held upstream
            _oai(g, timeout=1.0).chat.completions.create(model="local", messages=MSG)
        assert wait_for(lambda: _held(g) == {})
        release.set()
        openai_up.default = Reply(text="ok")
        assert [_ask(g) for _ in range(3)] == ["ok"] * 3
        assert _held(g) == {}
    finally:
        release.set()
