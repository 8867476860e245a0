"""A local model server's model list, read by `tierwise init` (and the starter config `serve` and `doctor` use
when there is no tierwise.yaml) and by `tierwise doctor`: the server is not trusted. Its ids must not write
keys of its choosing into tierwise.yaml or act on the terminal, and its answer must not hold the reader for
ever (a drip) or fill its memory (an endless or compressed body). Real HTTP on loopback."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner

from tierwise.cli import main


class ModelListServer:
    """An aiohttp server on loopback whose GET /v1/models is the given handler; it counts what it sent."""

    def __init__(self, handler: Callable[[web.Request, ModelListServer], Any]) -> None:
        self.handler = handler
        self.sent = 0
        self.client_left = threading.Event()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _start(self) -> None:
        app = web.Application()
        async def models(request: web.Request) -> web.StreamResponse:
            return await self.handler(request, self)  # type: ignore[no-any-return]

        app.router.add_get("/v1/models", models)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]

    def __enter__(self) -> ModelListServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()  # else left to the collector: "unclosed event loop" in a later test


def listing(*ids: Any, **entry: Any) -> Callable[..., Any]:
    async def handler(request: web.Request, server: ModelListServer) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": i, "object": "model", **entry} for i in ids]})
    return handler


async def endless(request: web.Request, server: ModelListServer, chunk: bytes = b" " * 65536,
                  pause: float = 0.0, limit: int | None = None) -> web.StreamResponse:
    """`{"data": [` then spaces for ever (or `limit` writes), `pause` seconds apart; notes the client leaving."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        await resp.write(b'{"data": [')
        while limit is None or server.sent < limit:
            await resp.write(chunk)
            server.sent += 1
            await asyncio.sleep(pause)
        await resp.write(b']}')
    except (ConnectionError, RuntimeError):
        server.client_left.set()
    return resp


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield tmp_path


INJECTED = "x\n    price: {input: 1000000, output: 1000000}\n  evil:\n    provider: anthropic\n    model: m"


@pytest.mark.parametrize("model_id", [INJECTED, "qwen # v2", "a: b", 'q"uote\\d', "x" * 5000,
                                      "\x1b]0;pwned\x07\x1b[2Jqwen", "m\u2028odel", "m\x85odel"])
def test_a_model_id_from_the_server_never_shapes_the_config_or_the_terminal(in_tmp, model_id):
    """Written as it came, the first id became YAML of the server's choosing (a price and a model the
    operator never wrote), `qwen # v2` the model `qwen`, `a: b` a config `serve` refuses, and the escape
    sequences were printed to the operator's terminal by `init`."""
    with ModelListServer(listing(model_id, "plain-model")) as up:
        r = CliRunner().invoke(main, ["init", "--local", up.url])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x07" not in r.output
    cfg = yaml.safe_load((in_tmp / "tierwise.yaml").read_text())
    assert "evil" not in cfg["models"] and "price" not in cfg["models"]["local"]
    written = cfg["models"]["local"]["model"]
    # an id that can be written is written whole; any other is passed over for the next one the server lists
    assert written == model_id if len(model_id) < 300 and model_id.isprintable() else written == "plain-model"
    from tierwise.config import load_config

    load_config(str(in_tmp / "tierwise.yaml"))  # a config the gateway starts with


def test_a_model_list_dripped_a_byte_at_a_time_is_given_up_on(in_tmp):
    """urllib's timeout is per read: a server sending one byte a second held `init` (and `serve` without a
    config, which probes the usual ports) for as long as it liked."""
    from tierwise.starter import served_models

    async def drip(request: web.Request, server: ModelListServer) -> Any:
        return await endless(request, server, chunk=b" ", pause=0.05, limit=400)  # 20 s, if read to the end

    with ModelListServer(drip) as up:
        assert served_models(up.url, timeout=1.0) is None
        assert up.client_left.wait(30), f"the reader stayed for all {up.sent} bytes"
        assert up.sent < 400


@pytest.mark.parametrize("body", ["endless", "gzip"])
def test_doctor_reads_a_model_list_no_further_than_its_cap(in_tmp, body):
    """`doctor` read the whole answer within its 5 s: 420 MB of spaces on a loaded host (more on an idle
    one), or a gzip bomb inflated in memory; and then said the server was fine."""
    import tracemalloc

    from tierwise.commands import doctor
    from tierwise.config import load_config

    bomb = gzip.compress(b'{"data": [' + b" " * (256 << 20) + b"]}", compresslevel=9)

    async def gz(request: web.Request, server: ModelListServer) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    with ModelListServer(endless if body == "endless" else gz) as up:
        (in_tmp / "tierwise.yaml").write_text(
            f"providers:\n  loc: {{kind: openai, base_url: '{up.url}', locality: local}}\n"
            "models:\n  local: {provider: loc, model: m, context_window: 8192}\n")
        p = load_config(str(in_tmp / "tierwise.yaml")).providers["loc"]
        tracemalloc.start()
        try:
            good, msg = asyncio.run(doctor.probe("loc", p, []))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert good and "model list is larger than 1,048,576 bytes" in msg, msg
    assert peak < 16 << 20, f"{peak:,} bytes"
