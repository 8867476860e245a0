"""Run a real tierwise gateway (uvicorn, real HTTP on loopback) in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import uvicorn
import yaml

from tierwise.config import Config, parse_config
from tierwise.server.asgi import App
from tierwise.server.build import build_gateway, uvicorn_config

IN_CI = os.environ.get("CI", "").lower() == "true"
# the shared fixtures' Redis (keys under a prefix of each test's own); a session given other databases sets it
REDIS_URL = os.environ.get("TIERWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(what: str) -> NoReturn:
    """A test cannot run here: skipped on a developer's machine, a failure under CI=true (where every
    test an issue asks for must run; the project's scripts install what it needs)."""
    if IN_CI:
        pytest.fail(f"{what}; CI=true, so this test may not be skipped", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping())
    except Exception:
        return False


def drop_redis_keys(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (taken literally: glob characters in it match only themselves) in the Redis
    at `url`; how many were deleted. Tests and benches clean up after themselves with it: never FLUSHDB on the
    shared Redis."""
    import redis

    literal = "".join("\\" + c if c in "*?[]\\^" else c for c in prefix)
    r = redis.Redis.from_url(url)
    try:
        keys = list(r.scan_iter(match=literal + "*", count=1000))
        return int(r.delete(*keys)) if keys else 0
    finally:
        r.close()


def own_keys(url: str, head: str, tail: str = ":") -> Iterator[str]:
    """A fixture's body (`yield from own_keys(URL, "tw-test-x-")`): a key prefix of one test's own, `head`, 8 random
    hex digits, `tail`; its keys in the Redis at `url` deleted afterwards."""
    prefix = f"{head}{uuid.uuid4().hex[:8]}{tail}"
    yield prefix
    drop_redis_keys(url, prefix)


def serve_stderr(argv: list[str], cwd: Path | str, env: dict[str, str]) -> str:
    """What a `tierwise serve` process (`argv`) prints on stderr up to and including its `serving on` line (or its
    exit); stopped with SIGINT afterwards."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "serving on" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    return "".join(seen)


# Tests on the shared Redis at 127.0.0.1:6379: skipped locally without one, never under CI=true
# (scripts/test.sh starts one when none answers).
needs_redis = pytest.mark.skipif(not IN_CI and not redis_up(), reason="no Redis at 127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_model_config(folder: Path, rest: str, route: str = "{policy: fallback, targets: [frontier]}") -> Path:
    """`folder/tw.yaml`: one remote model `frontier` on a port nothing listens on, route `main` (`route`), and
    the YAML `rest` (cache, budgets, dispatch, ...): for CLI tests that never reach an upstream."""
    path = folder / "tw.yaml"
    path.write_text(f"""
providers:
  cloud: {{kind: openai, base_url: "http://127.0.0.1:{free_port()}/v1", locality: remote}}
models:
  frontier: {{provider: cloud, model: big, price: {{input: 3, output: 15}}}}
routes:
  main: {route}
{rest}""")
    return path


class OwnRedis:
    """A redis-server of the test's own on a free port, which the test may stop and start again (the
    shared Redis on 6379 is never stopped). `stop` kills it as a crash would (no final save); with
    `appendonly` every write is fsynced first (or as `fsync` says: "everysec" is what docs/distributed.md
    advises), so what was acknowledged survives the restart; `shutdown` stops it gracefully."""

    def __init__(self, folder: Path, *, appendonly: bool = True, fsync: str = "always") -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", self.fsync],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.exceptions.RedisError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def shutdown(self) -> None:
        import redis

        try:
            redis.Redis(port=self.port).shutdown()
        except redis.exceptions.RedisError:
            pass
        if self.proc is not None:
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class ServeProcess:
    """A real `tierwise serve` process (its own interpreter, as in production); for the tests that kill it, run
    several of it, or share Redis between replicas. It binds port 0 itself (`--port 0`, over the config's
    `server.port`) and the test reads the port it got from its `serving on` line: a port picked by `free_port()`
    and bound later by the process could be taken meanwhile on a busy machine (then the process exited "port in
    use", or the health check below reached another test's server). `label` only names the log file."""

    def __init__(self, cfg: Path, label: int | str, tmp: Path, args: tuple[str, ...] = ()) -> None:
        import httpx2

        self._clients: list[Any] = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.log = open(tmp / f"serve-{label}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        self.p = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "-c", str(cfg), "--port", "0",
                                   *args], stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        deadline = time.monotonic() + 60
        while (found := re.search(rb"serving on http://\S+?:(\d+)", Path(self.log.name).read_bytes())) is None:
            assert self.p.poll() is None, Path(self.log.name).read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        self.port = int(found[1])
        self.url = f"http://127.0.0.1:{self.port}"
        while True:  # it listens before it says so: this waits for the app's start-up
            try:
                httpx2.get(self.url + "/health", timeout=1)
                return
            except httpx2.TransportError:
                assert self.p.poll() is None, Path(self.log.name).read_text()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)

    def keep(self, client: Any) -> Any:
        """`client` (an SDK or httpx client of this process), closed when it stops (see GatewayServer.keep)."""
        self._clients.append(client)
        return client

    def stop(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


class _Server(uvicorn.Server):
    """uvicorn's server, told to stop at once: its main loop looks at `should_exit` every 0.1 s, which cost every
    test's gateway ~0.05 s of idle wall time at teardown (some 1,500 gateways a suite run). Shutting down is
    uvicorn's own while a connection or task is open; with none, its fixed 0.1 s pause for connections to close
    (another ~0.1 s per gateway) is left out."""

    wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self.wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        for server in self.servers:  # what uvicorn's shutdown does with nothing open, less its pause
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


# How long `start()` waits for a server whose thread is still alive (a hung start, not a slow one).
START_TIMEOUT_S = 300


class GatewayServer:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.gateway = build_gateway(cfg)
        self.app = App(self.gateway)
        # Bound here, on port 0, and handed to uvicorn: a port picked by `free_port()` and bound later by uvicorn
        # could be taken meanwhile by any other process of a busy machine (another worker's server or client).
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        # A server never started (a test failing before `start()`) would leave the bound socket to the garbage
        # collector: closed with the object instead (uvicorn closes it itself once it served on it).
        self._close_sock = weakref.finalize(self, self._sock.close)
        self._server = _Server(uvicorn_config(self.app, "127.0.0.1", self.port, loop="asyncio"))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: list[Any] = []

    def keep(self, client: Any) -> Any:
        """`client` (a sync SDK or httpx client of this gateway), closed when the gateway stops. Left to the garbage
        collector, a client whose call raised sits in a reference cycle with the exception; the collector may
        finalise its pooled socket before the client, and "unclosed <socket.socket ...>" lands in whatever test
        runs then (under `-W error`, or a test that counts ResourceWarnings, a failure there)."""
        self._clients.append(client)
        return client

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            self.loop.close()  # else each server's loop reached the collector unclosed (a ResourceWarning)

    def start(self) -> GatewayServer:
        self._thread.start()
        # No short deadline (a loaded machine starts slowly): a start that failed ends the thread; the bound
        # only keeps a hung start from hanging the suite.
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        if self._thread.ident is None:  # never started: nothing serves, only the bound socket to close
            self._close_sock()
            return
        self._server.should_exit = True
        loop, wake = self.loop, self._server.wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(wake.set)
        self._thread.join(timeout=10)

    @property
    def ledger(self) -> Any:
        return self.gateway.ledger

    def on_loop(self, fn: Any) -> Any:
        """`fn()` run on the gateway's loop (state that loop changes, read whole)."""

        async def run() -> Any:
            return fn()

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    @property
    def guard(self) -> Any:
        """The server's connection guard (server/limits.py): its connections, their phases, evictions."""
        return self._server.config.http.guard  # type: ignore[union-attr]  # our protocol class

    def checked_out(self) -> int:
        """Upstream connections checked out of the gateway's pools now."""
        return int(self.on_loop(lambda: sum(len(s.connector._acquired) for s in self.gateway._sessions.values()
                                            if s.connector)))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every request the gateway was handling has finished and its row is written.

        A client can see the end of its answer (an SSE `[DONE]`) a moment before the gateway's
        handler returns; waiting for the handlers makes ledger checks in tests deterministic.
        """
        deadline = time.monotonic() + timeout
        while self.app.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.gateway.ledger is not None:
            self.gateway.ledger.flush()


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def make_config(data: dict[str, Any] | str, tmp_path: Path) -> Config:
    # libyaml's emitter when there is one: the pure-Python one cost ~10 ms a config (~3,000 configs a suite run)
    text = data if isinstance(data, str) else yaml.dump(data, Dumper=_DUMPER, sort_keys=False)
    cfg = parse_config(text, file=str(tmp_path / "tierwise.yaml"))
    cfg.base_dir = str(tmp_path)
    return cfg


# The doubles' upstream read timeout: far past any stall of a busy machine's gateway (2 s, as it was, failed tests
# whose doubles answer at once: "did not answer in time"). A test about a read timeout sets its own, short one.
READ_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10  # aiohttp counts a stalled gateway loop against it too: 1 s failed the same way


def two_tier_config(local_url: str, remote_url: str, *, local_kind: str = "openai", remote_kind: str = "anthropic",
                    routes: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A local model and a frontier model on the given doubles, plus a few routes."""
    def base(kind: str, url: str) -> str:
        return url + "/v1" if kind == "openai" else url

    cfg: dict[str, Any] = {
        "server": {"default_route": "main"},
        "ledger": {"path": "ledger.db"},
        "breaker": {"failures": 3, "cooldown": 0.3},
        "reference_model": "frontier",
        "providers": {
            "localsrv": {"kind": local_kind, "base_url": base(local_kind, local_url), "locality": "local",
                         "timeouts": {"connect": CONNECT_TIMEOUT_S, "read": READ_TIMEOUT_S}},
            "cloud": {"kind": remote_kind, "base_url": base(remote_kind, remote_url), "locality": "remote",
                      "timeouts": {"connect": CONNECT_TIMEOUT_S, "read": READ_TIMEOUT_S}},
        },
        "models": {
            "local": {"provider": "localsrv", "model": "qwen-local", "context_window": 8192},
            "frontier": {"provider": "cloud", "model": "big-model",
                         "price": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}},
        },
        "routes": routes or {
            "main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
        },
    }
    cfg.update(extra)
    return cfg


def read_head(sock: socket.socket, who: str, timeout: float = 10.0) -> bytes:
    """What a raw socket reads until the end of an HTTP answer's head; fails naming `who` if it is closed first."""
    sock.settimeout(timeout)
    answer = b""
    while b"\r\n\r\n" not in answer:
        piece = sock.recv(65536)
        assert piece, f"{who} was closed: {answer[:200]!r}"
        answer += piece
    return answer


def exchange(port: int, data: bytes, timeout: float = 10.0, then: tuple[bytes, ...] = (), pause: float = 0.1) -> bytes:
    """Send `data` at once on a fresh loopback connection (then each of `then`, `pause` seconds apart: separate
    reads on the server); everything the server answers until it closes (or no byte comes for `timeout` seconds)."""
    import time

    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (each piece its own segment)
        s.settimeout(timeout)
        try:
            s.sendall(data)
            for piece in then:
                time.sleep(pause)
                s.sendall(piece)
        except OSError:  # closed on us mid-send: what it answered is still to be read
            pass
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except OSError:
            pass
        return got


def wait_for(pred: Any, timeout: float = 10.0) -> bool:
    """Whether `pred()` came true within `timeout` seconds (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False
