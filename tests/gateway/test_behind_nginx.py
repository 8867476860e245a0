"""The gateway behind a real reverse proxy: Debian's nginx (scripts/install-nginx.sh), configured as
docs/security/bounds.md "Behind a reverse proxy" says (`X-Forwarded-For $proxy_add_x_forwarded_for`, a pool of
kept-alive upstream connections, request bodies and SSE streamed through).

Clients talk to nginx from loopback
addresses of their own (127.0.0.2, 127.0.0.3), with the official SDK.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.doubles.script import Hold, Reply
from tests.harness import GatewayServer, free_port, unavailable, wait_for

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
MSG = [{"role": "user", "content": "hi"}]

CONF = """daemon off;
master_process off;
error_log {tmp}/error.log info;
pid {tmp}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream gateway {{ server 127.0.0.1:{gateway}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 60s;
    }}
  }}
}}
"""


class Nginx:
    def __init__(self, tmp: Path, gateway_port: int) -> None:
        if NGINX is None:
            unavailable("Debian's nginx is not installed (scripts/install-nginx.sh installs it)")
        self.tmp = tmp
        # nginx cannot be told to bind port 0, and handing it a bound socket (`NGINX=fd;`, its binary upgrade's
        # way) crashed Debian's 1.22 (SIGSEGV): a free port is picked, and another one if it was taken meanwhile.
        for _ in range(5):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            conf = tmp / "nginx.conf"
            conf.write_text(CONF.format(tmp=tmp, gateway=gateway_port, port=self.port))
            (tmp / "error.log").write_text("")
            self.p = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            assert wait_for(lambda: self.p.poll() is not None or self._listening(), timeout=30), self.log()[-2000:]
            if self.p.poll() is None:
                return
            assert "Address already in use" in self.log(), f"nginx did not start: {self.log()[-2000:]}"
        raise AssertionError("nginx found no free port in five tries")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def behind_nginx(gateway, openai_up, tmp_path) -> Iterator:
    made: list[Nginx] = []

    def make(**limits):
        g = gateway({"server": {"default_route": "local", "limits": {"max_streams_per_client": 2, **limits}},
                     "ledger": {"enabled": False},
                     "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1",
                                           "locality": "local"}},
                     "models": {"local": {"provider": "loc", "model": "m"}}})
        folder = tmp_path / f"nginx{len(made)}"
        folder.mkdir()
        made.append(Nginx(folder, g.port))
        return g, made[-1]

    yield make
    for n in made:
        n.stop()


def _client(g: GatewayServer, proxy: Nginx, source: str, headers: dict[str, str] | None = None) -> openai.OpenAI:
    """A client of `g` through `proxy` (kept open until `g` stops: a client collected closes its connection, and
    its stream would end)."""
    http = httpx.Client(transport=httpx.HTTPTransport(local_address=source), headers=headers, timeout=60)
    return g.keep(openai.OpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, http_client=http))


def _stream(g: GatewayServer, proxy: Nginx, source: str, headers: dict[str, str] | None = None):
    s = _client(g, proxy, source, headers).chat.completions.create(model="local", messages=MSG, stream=True)
    next(iter(s))  # open: its first event came through nginx
    return s


@pytest.mark.parametrize("trusted", [True, False])
def test_each_client_behind_nginx_is_its_own_client(behind_nginx, openai_up, trusted):
    """Through nginx, client A (127.0.0.2) holds its two streams (cap 2); client B (127.0.0.3) opens one. With
    nginx in `trusted_proxies` the gateway counts each client by the address nginx appended (A also wrote a
    spoofed X-Forwarded-For naming B: nginx appends, the gateway reads from the right), and B is served; without
    it every request is nginx's (127.0.0.1), so B's stream is refused: the setting is what tells them apart."""
    g, proxy = behind_nginx(trusted_proxies=["127.0.0.1"] if trusted else [])
    release = threading.Event()
    openai_up.default = Hold(1, release, Reply(text="one two three"))
    try:
        a = [_stream(g, proxy, "127.0.0.2", {"x-forwarded-for": "127.0.0.3"}) for _ in range(2)]
        opened = dict(g.on_loop(lambda: dict(g.app.streams.open)))
        if trusted:
            assert opened == {"127.0.0.2": 2}
            with pytest.raises(openai.RateLimitError) as e:  # A's third, in OpenAI's schema, through nginx
                _stream(g, proxy, "127.0.0.2")
            assert e.value.code == "rate_limit_exceeded" and e.value.response.headers["retry-after"] == "1"
            b = _stream(g, proxy, "127.0.0.3")
            assert dict(g.on_loop(lambda: dict(g.app.streams.open))) == {"127.0.0.2": 2, "127.0.0.3": 1}
            a.append(b)
        else:
            assert opened == {"127.0.0.1": 2}
            with pytest.raises(openai.RateLimitError):
                _stream(g, proxy, "127.0.0.3")
        release.set()
        for s in a:
            assert "".join(c.choices[0].delta.content or "" for c in s if c.choices) == "one two three"
        assert wait_for(lambda: g.on_loop(lambda: dict(g.app.streams.open)) == {})
        # nginx kept its upstream connections alive: idle, they are counted as nginx's (127.0.0.1) again.
        assert wait_for(lambda: set(g.on_loop(lambda: dict(g.guard.peers))) == {"127.0.0.1"})
    finally:
        release.set()
