"""The harness's gateways (in-process and `tierwise serve` processes) serve on a port they hold from the
moment it is picked (tests/harness.py)."""

from __future__ import annotations

import socket

import httpx2 as httpx

from tests import harness
from tests.harness import GatewayServer, ServeProcess, make_config


def test_a_gateway_port_taken_between_pick_and_bind_cannot_stop_the_gateway(tmp_path, monkeypatch):
    """`free_port()` closes the port it picked and uvicorn bound it later: on a busy machine any other process
    could take it in between, and the gateway did not start ("gateway did not start", or another server
    answered its requests). Here the pick is made to fall on a port another socket holds."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        monkeypatch.setattr(harness, "free_port", lambda: int(taken.getsockname()[1]))
        g = GatewayServer(make_config({"routes": {}}, tmp_path)).start()
        try:
            assert g.port != taken.getsockname()[1]
            assert httpx.get(g.url + "/health", timeout=30).status_code == 200
        finally:
            g.stop()
    finally:
        taken.close()


def test_a_serve_process_port_taken_before_it_binds_cannot_stop_it(tmp_path):
    """The same for `ServeProcess` (a real `tierwise serve`): the tests picked a port with `free_port()` and wrote
    it into the config, and the process bound it a second or more later (its interpreter starting). Taken in
    between, the process exited "port in use", or the health check reached whatever held the port. Here the
    config's port is held by another socket from the start."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        cfg = tmp_path / "tw.yaml"
        cfg.write_text(f"server: {{port: {taken.getsockname()[1]}}}\nledger: {{enabled: false}}\n")
        s = ServeProcess(cfg, taken.getsockname()[1], tmp_path)
        try:
            assert s.port != taken.getsockname()[1]
            assert httpx.get(s.url + "/health", timeout=30).status_code == 200
        finally:
            s.stop()
    finally:
        taken.close()


def test_a_gateway_built_but_never_started_leaves_no_socket_open(tmp_path):
    """The harness binds its port when the `GatewayServer` is built; one never started (a test that fails
    before `start()`, or builds one to read its config) left that socket to the garbage collector:
    a ResourceWarning, and under `-W error` an error in whatever test the collector ran in (review27b)."""
    import gc
    import warnings

    gc.collect()  # garbage other tests left (a client socket of theirs) is not this test's to judge
    g = GatewayServer(make_config({"routes": {}}, tmp_path))
    sock = g._sock
    mine = f"laddr={sock.getsockname()!r}"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        del g
        gc.collect()
    assert sock.fileno() == -1, "the bound socket is still open"
    ours = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning) and mine in str(w.message)]
    assert not ours, ours


def test_stopping_a_gateway_never_started_closes_its_socket(tmp_path):
    g = GatewayServer(make_config({"routes": {}}, tmp_path))
    g.stop()
    assert g._sock.fileno() == -1
