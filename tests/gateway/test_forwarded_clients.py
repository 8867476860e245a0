"""Clients behind a reverse proxy at the connection cap (`server.limits.trusted_proxies`, server/forwarded.py).

Without a trusted proxy no header moves a connection's address (a client claiming others' addresses in
`X-Forwarded-For` or `Forwarded` stays one client). Behind a configured proxy every connection was the
proxy's, so at the cap one client's slow uploads through it were everyone's: the oldest body went first,
whoever sent it. Real sockets from loopback addresses (127.0.0.1 plays the proxy).
"""

from __future__ import annotations

import socket

import pytest

from tests.harness import read_head, wait_for

BODY = b'{"model": "local", "messages": [{"role": "user", "content": "hi"}]}'
LENGTH = 50_000


def _gw(gateway, openai_up, **limits):
    return gateway({"server": {"default_route": "local", "limits": {"max_connections": 8, **limits}},
                    "ledger": {"enabled": False},
                    "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}},
                    "models": {"local": {"provider": "loc", "model": "m"}}})


def _slow_body(source: str, port: int, forwarded: bytes = b"") -> socket.socket:
    """A chat request whose body stops after 1,000 of its 50,000 bytes (the rest: `_finish`)."""
    s = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
              b"content-length: %d\r\n%s\r\n" % (LENGTH, forwarded) + BODY.ljust(LENGTH)[:1000])
    return s


def _finish(s: socket.socket) -> bytes:
    s.sendall(BODY.ljust(LENGTH)[1000:])
    return read_head(s, "the connection", timeout=30)


def _peers(g) -> dict[str, int]:
    return dict(g.on_loop(lambda: dict(g.guard.peers)))


def _bodies(g) -> int:
    return int(g.on_loop(lambda: sum(1 for _, p in g.guard.waiting.values() if p == "body")))


def test_one_client_behind_a_trusted_proxy_makes_room_from_its_own_uploads(gateway, openai_up):
    """Cap 8, all through the proxy (127.0.0.1): client B's upload first, then seven slow uploads of client A,
    then one more connection. Before: every connection was the proxy's, so the oldest body went, **B's (408)**.
    Now each request counts as the client the proxy names: A holds the most, A's oldest upload makes room."""
    g = _gw(gateway, openai_up, trusted_proxies=["127.0.0.1"])
    socks: list[socket.socket] = []
    try:
        b = _slow_body("127.0.0.1", g.port, b"x-forwarded-for: 198.51.100.2\r\n")
        socks.append(b)
        assert wait_for(lambda: _bodies(g) == 1, timeout=30)
        for _ in range(7):  # A's: a spoofed entry first (the client's own), then what the proxy appended
            socks.append(_slow_body("127.0.0.1", g.port, b"x-forwarded-for: 198.51.100.2, 203.0.113.7\r\n"))
        assert wait_for(lambda: _bodies(g) == 8, timeout=30)
        assert _peers(g) == {"198.51.100.2": 1, "203.0.113.7": 7}
        socks.append(socket.create_connection(("127.0.0.1", g.port)))  # the cap is passed
        assert wait_for(lambda: g.on_loop(lambda: g.guard.evicted) == 1, timeout=30)
        assert _finish(b).startswith(b"HTTP/1.1 200")
        socks[1].settimeout(30)
        assert socks[1].recv(65536).startswith(b"HTTP/1.1 408")  # A's oldest
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("header", [b"x-forwarded-for: 10.9.%d.1\r\n", b"forwarded: for=10.9.%d.1\r\n",
                                    b"x-real-ip: 10.9.%d.1\r\n"])
@pytest.mark.parametrize("trusted", [[], ["127.0.0.1"]])
def test_a_client_that_is_not_a_trusted_proxy_cannot_pass_for_others(gateway, openai_up, header, trusted):
    """A client (127.0.0.5) whose seven uploads each claim another address stays one client: it makes room,
    not the other client (127.0.0.6) whose upload is older; with or without a trusted proxy configured."""
    g = _gw(gateway, openai_up, trusted_proxies=trusted)
    socks: list[socket.socket] = []
    try:
        other = _slow_body("127.0.0.6", g.port)
        socks.append(other)
        assert wait_for(lambda: _bodies(g) == 1, timeout=30)
        for i in range(7):
            socks.append(_slow_body("127.0.0.5", g.port, header % i))
        assert wait_for(lambda: _bodies(g) == 8, timeout=30)
        assert _peers(g) == {"127.0.0.6": 1, "127.0.0.5": 7}
        socks.append(socket.create_connection(("127.0.0.1", g.port), source_address=("127.0.0.5", 0)))
        assert wait_for(lambda: g.on_loop(lambda: g.guard.evicted) == 1, timeout=30)
        assert _finish(other).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()


def test_the_forwarded_header_is_read_from_the_right_and_only_as_configured():
    from tierwise.server.forwarded import MAX_HOPS, TrustedProxies, parse_address

    xff = TrustedProxies(["10.0.0.0/8", "2001:db8:ff::/48"], "x-forwarded-for")

    def h(*values: str, name: bytes = b"x-forwarded-for") -> list[tuple[bytes, bytes]]:
        return [(name, v.encode()) for v in values]

    assert xff.client(h("203.0.113.7")) == "203.0.113.7"
    assert xff.client(h("1.2.3.4, 203.0.113.7, 10.1.1.1")) == "203.0.113.7"  # inner proxy skipped
    assert xff.client(h("1.2.3.4", "203.0.113.7:5555")) == "203.0.113.7"  # two lines are one list
    assert xff.client(h("[2001:db8::5]:443")) == "2001:db8::5"
    assert xff.client(h("::ffff:203.0.113.7")) == "203.0.113.7"
    assert xff.client(h("1.2.3.4, unknown")) is None  # the nearest entry is no address: the proxy's own
    assert xff.client(h("1.2.3.4, fe80::1%eth0")) is None
    assert xff.client(h("10.0.0.1, 10.0.0.2")) == "10.0.0.1"  # all proxies: the farthest
    assert xff.client(h("203.0.113.7", name=b"forwarded")) is None  # the other header is not read
    assert xff.client([]) is None
    assert xff.client(h(", ".join(["10.0.0.1"] * 100_000) + ", 203.0.113.9")) == "203.0.113.9"
    assert xff.client(h("203.0.113.9, " + ", ".join(["10.0.0.1"] * (MAX_HOPS + 5)))) == "10.0.0.1"  # bounded
    fwd = TrustedProxies(["10.0.0.0/8"], "forwarded")
    assert fwd.client(h('for=1.2.3.4, for="[2001:db8::7]:80";proto=https, For=10.0.0.3', name=b"forwarded")) \
        == "2001:db8::7"
    assert fwd.client(h("for=_hidden", name=b"forwarded")) is None
    assert fwd.client(h("203.0.113.7")) is None  # X-Forwarded-For is not read
    assert parse_address("300.1.1.1") is None and parse_address("x" * 100) is None
    assert xff.trusts("10.2.3.4") and not xff.trusts("11.0.0.1") and not xff.trusts(None)


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path):
    from tierwise.config import ServerLimits

    assert ServerLimits(trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"]).trusted_proxies
    with pytest.raises(ValueError, match="not an IP address or network"):
        ServerLimits(trusted_proxies=["proxy.example"])


def test_quoted_forwarded_values_are_one_value(tmp_path):
    """review28d: RFC 7239 values may be quoted-strings holding `,` and `;` (a proxy's `host="…"` carries the
    Host the client chose). A plain split read a client's `host="a,for=6.6.6.6"` in the proxy's own element as
    the client's address; a second `for=` in one element (RFC 7239: at most one) or a broken quote is no address."""
    from tierwise.server.forwarded import TrustedProxies

    fwd = TrustedProxies(["10.0.0.0/8"], "forwarded")

    def c(value: str) -> str | None:
        return fwd.client([(b"forwarded", value.encode())])

    assert c('for=203.0.113.7;host="a,for=6.6.6.6"') == "203.0.113.7"
    assert c('host="a;for=6.6.6.6";for=203.0.113.7') == "203.0.113.7"
    assert c('for=203.0.113.7;host="a\\",for=6.6.6.6"') == "203.0.113.7"  # a quoted-pair inside
    assert c('for=6.6.6.6;for=203.0.113.7') is None
    assert c('for="6.6.6.6, for=203.0.113.7"') is None
    assert c('for="203.0.113.7') is None and c('for=""203.0.113.7""') is None
    assert c('for=1.2.3.4, for=203.0.113.7;proto=https') == "203.0.113.7"


def test_trusted_proxies_refuse_catch_alls_host_bits_and_zones():
    """review28d: `0.0.0.0/0` (or `::/0`, `::ffff:0.0.0.0/96`) let every client name itself anyone; `10.0.0.1/8`
    trusted the whole /8 unsaid; a mapped network (`::ffff:10.0.0.0/104`) never matched its own proxies."""
    from tierwise.config import ServerLimits
    from tierwise.server.forwarded import TrustedProxies

    for bad, says in (("0.0.0.0/0", "trusts every address"), ("::/0", "trusts every address"),
                      ("::ffff:0.0.0.0/96", "trusts every address"), ("10.0.0.1/8", "host bits"),
                      ("fe80::1%eth0", "zone index")):
        with pytest.raises(ValueError, match=says):
            ServerLimits(trusted_proxies=[bad])
    mapped = TrustedProxies(ServerLimits(trusted_proxies=["::ffff:10.0.0.0/104"]).trusted_proxies, "x-forwarded-for")
    assert mapped.trusts("10.1.2.3") and mapped.trusts("::ffff:10.1.2.3") and not mapped.trusts("11.0.0.1")
    assert mapped.client([(b"x-forwarded-for", b"203.0.113.7, 10.9.9.9")]) == "203.0.113.7"
