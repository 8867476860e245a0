"""Streamed answers open at once per client (`server.limits.max_streams_per_client`, server/stream_cap.py).

Before, one client on an open gateway held as many streams as it had connections (up to `max_connections`),
and with them every connection of a provider's pool. Streams are held open by the double (`Hold`) until the
test releases them; the clients are the official SDKs, from loopback addresses of their own.
"""

from __future__ import annotations

import threading

import anthropic
import openai
import pytest

from tests.doubles.script import Hold, Reply
from tests.gateway.client_caps import MSG, ant_from, assert_refused, oai_from
from tests.harness import wait_for


def _gw(gateway, openai_up, **limits):
    return gateway({"server": {"default_route": "local", "limits": {"max_streams_per_client": 2, **limits}},
                    "ledger": {"enabled": False},
                    "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}},
                    "models": {"local": {"provider": "loc", "model": "m"}}})


def _oai(g, source="127.0.0.1", headers=None) -> openai.OpenAI:
    return oai_from(g, source, headers)


def _ant(g, source="127.0.0.1", headers=None) -> anthropic.Anthropic:
    return ant_from(g, source, headers)


def _hold_streams(g, openai_up, n: int, release: threading.Event, source="127.0.0.1", headers=None) -> list:
    """`n` streams from `source`, each open (its first event read) until `release` is set."""
    openai_up.default = Hold(1, release, Reply(text="one two three"))
    streams = []
    for _ in range(n):
        client = _oai(g, source, headers)
        s = client.chat.completions.create(model="local", messages=MSG, stream=True)
        next(iter(s))
        s.client_kept = client  # (a client collected closes its connection: the gateway would see it leave)
        streams.append(s)
    return streams


def _open(g) -> dict[str, int]:
    return dict(g.on_loop(lambda: dict(g.app.streams.open)))


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses"])
def test_one_client_cannot_hold_more_streams_than_its_cap(gateway, openai_up, api):
    """Cap 2: a third stream from the same address is refused with 429 in the client's API schema (before, it
    was served: as many as the client had connections); another address is not held back by it; once the
    streams end, the client may open more."""
    g = _gw(gateway, openai_up)
    release = threading.Event()
    held = _hold_streams(g, openai_up, 2, release)
    try:
        assert _open(g) == {"127.0.0.1": 2}
        calls = len(openai_up.requests)
        assert_refused(g, api, True, "max_streams_per_client")
        assert len(openai_up.requests) == calls  # refused before any upstream call
        # A non-streamed request of the same client is not a stream: served.
        assert _oai(g).chat.completions.create(model="local", messages=MSG).choices[0].message.content
        other = _hold_streams(g, openai_up, 1, release, "127.0.0.2")[0]
        assert _open(g) == {"127.0.0.1": 2, "127.0.0.2": 1}
        release.set()
        for s in [*held, other]:
            assert "".join(c.choices[0].delta.content or "" for c in s if c.choices)
        assert wait_for(lambda: _open(g) == {})
        openai_up.default = Reply(text="again")
        for _ in range(3):  # the slots were given back
            assert "".join(c.choices[0].delta.content or "" for c in _oai(g).chat.completions.create(
                model="local", messages=MSG, stream=True) if c.choices) == "again"
    finally:
        release.set()


def test_a_client_that_leaves_gives_its_stream_back(gateway, openai_up):
    g = _gw(gateway, openai_up)
    release = threading.Event()
    try:
        held = _hold_streams(g, openai_up, 2, release)
        assert _open(g) == {"127.0.0.1": 2}
        for s in held:
            s.close()
        assert wait_for(lambda: _open(g) == {})
    finally:
        release.set()


def test_clients_behind_a_trusted_proxy_each_have_their_own_cap(gateway, openai_up):
    """Through a proxy listed in `trusted_proxies` each forwarded client has its own count (else the proxy's
    clients together would share one cap); a client naming itself someone else from outside a proxy cannot."""
    g = _gw(gateway, openai_up, trusted_proxies=["127.0.0.1"])
    release = threading.Event()
    try:
        a = _hold_streams(g, openai_up, 2, release, headers={"x-forwarded-for": "203.0.113.7"})
        b = _hold_streams(g, openai_up, 1, release, headers={"x-forwarded-for": "198.51.100.2"})
        assert _open(g) == {"203.0.113.7": 2, "198.51.100.2": 1}
        with pytest.raises(openai.RateLimitError):
            _oai(g, headers={"x-forwarded-for": "203.0.113.7"}).chat.completions.create(
                model="local", messages=MSG, stream=True)
        c = _hold_streams(g, openai_up, 2, release, source="127.0.0.3", headers={"x-forwarded-for": "192.0.2.1"})
        with pytest.raises(openai.RateLimitError):  # 127.0.0.3 is no proxy: its header is not read
            _oai(g, "127.0.0.3", headers={"x-forwarded-for": "192.0.2.2"}).chat.completions.create(
                model="local", messages=MSG, stream=True)
        assert len(a + b + c) == 5  # (held open until here)
    finally:
        release.set()


def test_one_ipv6_site_cannot_multiply_its_cap_over_its_64s(gateway, openai_up):
    """A host given a /48 (or a /56) has 65,536 (256) /64s: counted per /64 only, it held that many times the cap
    (review29b). Its network (`network_prefix_v6`, a /48) has the cap too; another /48 is not held back by it,
    and the counts go back to nothing when the streams end. (Clients named by a trusted proxy: loopback has
    one IPv6 address.)"""
    g = _gw(gateway, openai_up, trusted_proxies=["127.0.0.1"])
    release = threading.Event()

    def xff(addr: str) -> dict[str, str]:
        return {"x-forwarded-for": addr}

    try:
        a = _hold_streams(g, openai_up, 1, release, headers=xff("2001:db8:0:1::1"))
        a += _hold_streams(g, openai_up, 1, release, headers=xff("2001:db8:0:2::1"))
        calls = len(openai_up.requests)
        with pytest.raises(openai.RateLimitError) as e:  # a third /64 of the same /48
            _oai(g, headers=xff("2001:db8:0:3::1")).chat.completions.create(model="local", messages=MSG, stream=True)
        assert "network (2001:db8::/48)" in e.value.message and "max_streams_per_client" in e.value.message
        assert len(openai_up.requests) == calls
        b = _hold_streams(g, openai_up, 2, release, headers=xff("2001:db8:1:1::1"))  # another /48
        assert _open(g) == {"2001:db8:0:1::": 1, "2001:db8:0:2::": 1, "2001:db8::/net": 2,
                            "2001:db8:1:1::": 2, "2001:db8:1::/net": 2}
        release.set()
        for s in [*a, *b]:
            assert "".join(c.choices[0].delta.content or "" for c in s if c.choices)
        assert wait_for(lambda: _open(g) == {})
    finally:
        release.set()
