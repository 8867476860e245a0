"""The dashboard's live streams (at most 32 per process) taken by keys other than the operator's. Gateway keys had
caps of their own (4 a key, 24 together); a read-only viewer key had none: its holder opened 32 streams, kept them
open (each ends after 30 s and the page reconnects at once, so a script just reopens them) and every admin's live
view was refused (429) for as long as it liked. Real HTTP on loopback, raw sockets holding the streams."""

from __future__ import annotations

import socket
from typing import Any

import pytest

CLIENTS = {f"CLI_{i}": f"key-client-{i}" for i in range(6)}
KEYS = {**CLIENTS, "VIEW": "key-viewer-1", "ADMIN": "key-admin-1"}


@pytest.fixture
def g(two_tier: Any, monkeypatch: Any) -> Any:
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    return two_tier(server={"api_keys_env": [{"env": env, "name": env.lower()} for env in CLIENTS],
                            "admin_keys_env": ["ADMIN"]},
                    observability={"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"]}})


def open_stream(g: Any, key: str, held: list[socket.socket]) -> int:
    """Open the live stream with `key`; the status it answers (the socket stays open while the test runs)."""
    s = socket.create_connection(("127.0.0.1", g.port), timeout=20)
    s.sendall(f"GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "the gateway closed the connection"
        head += chunk
    held.append(s)
    return int(head.split(b" ", 2)[1])


def test_a_viewer_key_cannot_take_every_live_stream_from_the_admin(g):
    held: list[socket.socket] = []
    try:
        viewer = [open_stream(g, KEYS["VIEW"], held) for _ in range(32)]
        assert 200 in viewer and viewer.count(429) >= 8  # the viewer holds some, not all
        assert open_stream(g, KEYS["ADMIN"], held) == 200  # the operator still sees the live view
    finally:
        for s in held:
            s.close()


def test_gateway_keys_leave_live_streams_for_viewer_keys_and_both_leave_some_for_the_admin(g):
    held: list[socket.socket] = []
    try:
        clients = [[open_stream(g, KEYS[env], held) for _ in range(5)] for env in CLIENTS]
        assert all(c[4] == 429 for c in clients)  # 4 a key, as before
        assert sum(c.count(200) for c in clients) == 16  # all gateway keys together (they took 24, leaving 8)
        viewer = [open_stream(g, KEYS["VIEW"], held) for _ in range(9)]
        assert viewer == [200] * 8 + [429]  # gateway and viewer keys together: 24
        assert [open_stream(g, KEYS["ADMIN"], held) for _ in range(9)] == [200] * 8 + [429]  # 32 in all
    finally:
        for s in held:
            s.close()
