"""A hostile or hijacked upstream answers with a redirect to a host of its choosing: the gateway
must not follow it. aiohttp drops `Authorization` when a redirect changes origin, but not
`x-api-key` (Anthropic) or a provider's own key headers (`api-key`, `x-goog-api-key`, ...), so
following the redirect would hand the operator's key to whatever host the upstream named (and
in clear text on an https -> http redirect). Real HTTP on loopback, the official SDKs as clients.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply
from tests.doubles.base import DoubleServer
from tests.harness import GatewayServer, make_config, wait_for

KEY_ANT = "tw-ant-" + secrets.token_hex(20)
KEY_OAI = "tw-oai-" + secrets.token_hex(20)
HEADER_KEY = "tw-hdr-" + secrets.token_hex(20)  # an Azure-style `api-key` header from the config
KEYS = (KEY_ANT, KEY_OAI, HEADER_KEY)


class Redirector(DoubleServer):
    """Answers every request with `status` and a Location on another host (the attacker's)."""

    def __init__(self, target: str, status: int) -> None:
        super().__init__()
        self.target, self.status = target, status

    def add_routes(self, app: web.Application) -> None:
        pass  # every path reaches the catch-all below

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status, headers={"location": self.target + request.path_qs})


@pytest.fixture(params=[307, 308, 302, 301])
def env(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TW_REDIR_ANT", KEY_ANT)
    monkeypatch.setenv("TW_REDIR_OAI", KEY_OAI)
    # The attacker's hosts answer properly, so a followed redirect would look like success.
    ant_thief, oai_thief = AnthropicDouble().start(), OpenAIDouble().start()
    for thief in (ant_thief, oai_thief):
        thief.script(*[Reply(text="stolen") for _ in range(4)])
    ant_up, oai_up = Redirector(ant_thief.url, request.param).start(), Redirector(oai_thief.url, request.param).start()
    data = {
        "ledger": {"path": "ledger.db"},
        "providers": {
            "ant": {"kind": "anthropic", "base_url": ant_up.url, "api_key_env": "TW_REDIR_ANT",
                    "timeouts": {"connect": 2, "read": 5}},
            "oai": {"kind": "openai", "base_url": oai_up.url + "/v1", "api_key_env": "TW_REDIR_OAI",
                    "headers": {"api-key": HEADER_KEY}, "timeouts": {"connect": 2, "read": 5}},
        },
        "models": {"frontier": {"provider": "ant", "model": "big-model"},
                   "local": {"provider": "oai", "model": "small-model"}},
        "routes": {},
    }
    g = GatewayServer(make_config(data, tmp_path)).start()
    try:
        yield {"g": g, "thieves": (ant_thief, oai_thief)}
    finally:
        g.stop()
        for s in (ant_up, oai_up, ant_thief, oai_thief):
            s.stop()


def _stolen(env: dict[str, Any]) -> list[str]:
    seen = [repr(r.headers) for thief in env["thieves"] for r in thief.requests]
    return [k for k in KEYS if any(k in s for s in seen)]


def _status(call: Any) -> int:
    """The HTTP status the SDK reports (200 when the call succeeded)."""
    try:
        out = call()
        if hasattr(out, "__iter__") and not isinstance(out, (str, bytes, dict)):
            list(out)  # a stream: its error, if any, comes while reading
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        assert "redirect" in str(e).lower(), str(e)  # a clear error in the client's own schema
        return e.status_code
    return 200


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_redirecting_upstream_gets_no_key_to_another_host(env: dict[str, Any], stream: bool) -> None:
    g: GatewayServer = env["g"]
    msgs = [{"role": "user", "content": "hi"}]
    ac = g.keep(anthropic.Anthropic(base_url=g.url, api_key="unused", max_retries=0))
    oc = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0))
    statuses = [
        _status(lambda: ac.messages.create(model="frontier", messages=msgs, max_tokens=20, stream=stream)),  # type: ignore[arg-type, call-overload]
        _status(lambda: oc.chat.completions.create(model="local", messages=msgs, max_tokens=20, stream=stream)),  # type: ignore[arg-type, call-overload]
    ]
    assert not _stolen(env), "a key reached the host the upstream redirected to"
    assert all(not t.requests for t in env["thieves"]), "the gateway followed the upstream's redirect"
    assert statuses == [502, 502]  # the upstream misbehaved; nothing was answered


def test_embeddings_and_count_tokens_follow_no_redirect(env: dict[str, Any]) -> None:
    g: GatewayServer = env["g"]
    oc = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0))
    status = _status(lambda: oc.embeddings.create(model="local", input="hi"))
    ac = g.keep(anthropic.Anthropic(base_url=g.url, api_key="unused", max_retries=0))
    ac.messages.count_tokens(model="frontier", messages=[{"role": "user", "content": "hi"}])  # falls back to an estimate
    assert not _stolen(env), "a key reached the host the upstream redirected to"
    assert status == 502


# ---------------------------------------------------------------------------- the OTLP receiver

RECEIVER_TOKEN = "tw-otlp-" + secrets.token_hex(20)  # e.g. an x-honeycomb-team or api-key header
RECEIVER_BEARER = "tw-otlpb-" + secrets.token_hex(20)


class _Host:
    """A plain HTTP server on loopback answering every request with `status` (and `location`), keeping the
    headers each request carried."""

    def __init__(self, status: int, location: str | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[dict[str, str]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                host.seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET = _any  # noqa: N815

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [307, 302])
def test_the_otlp_exporter_follows_no_redirect(tmp_path: Any, status: int) -> None:
    """The receiver's credentials (tracing.headers) stay with the receiver the config names: a redirect to
    another host got them re-sent there (aiohttp keeps every header but Authorization; urllib, which
    exports when no event loop runs, every header)."""
    from tierwise.observability.settings import TracingConfig
    from tierwise.observability.spans import SpanExporter

    thief = _Host(200)
    receiver = _Host(status, thief.url + "/v1/traces")
    up = AnthropicDouble().start()
    up.default = Reply(text="ok")
    headers = {"x-honeycomb-team": RECEIVER_TOKEN, "authorization": f"Bearer {RECEIVER_BEARER}"}
    data = {
        "providers": {"ant": {"kind": "anthropic", "base_url": up.url}},
        "models": {"frontier": {"provider": "ant", "model": "big-model"}},
        "routes": {},
        "observability": {"tracing": {"endpoint": receiver.url + "/v1/traces", "interval": 0.05, "headers": headers}},
    }
    g = GatewayServer(make_config(data, tmp_path)).start()
    try:
        g.keep(anthropic.Anthropic(base_url=g.url, api_key="unused", max_retries=0)).messages.create(
            model="frontier", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert wait_for(lambda: len(receiver.seen) >= 1), "the spans were never exported"
        # without an event loop (library use from sync code, the CLI): urllib
        exporter = SpanExporter(TracingConfig(endpoint=receiver.url + "/v1/traces", headers=headers), {})
        assert exporter._post_sync(b"") is False  # a redirect is a failed export
    finally:
        g.stop()  # (exports what is left, on the loop)
        up.stop()
    stolen = [h for h in thief.seen if RECEIVER_TOKEN in repr(h) or RECEIVER_BEARER in repr(h)]
    thief.stop()
    receiver.stop()
    assert not stolen, f"the receiver's credentials reached the host its redirect named: {stolen}"
    assert len(receiver.seen) >= 2 and all(h.get("x-honeycomb-team") == RECEIVER_TOKEN for h in receiver.seen)
