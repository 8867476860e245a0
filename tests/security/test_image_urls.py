"""Image URLs in requests as an SSRF reach into the gateway's network (docs/security/reach.md): a client
names an address only the gateway host can reach, and a local model server that fetches image URLs
would fetch it. Real HTTP on loopback: the SDKs send the image URL, an image server on loopback
records what reached it, the upstream doubles record what the gateway sent them."""

from __future__ import annotations

import asyncio
import base64
import http.server
import threading
import time
from typing import Any

import anthropic
import openai
import pytest

from tests.doubles import Fail, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tierwise.config import ImageFetchConfig
from tierwise.providers import image_urls

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


class ImageServer:
    """A loopback HTTP server: `/img.png`, `/page.html`, `/big`, `/slow`, `/redirect?to=URL`, `/hop/N`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.hits: list[str] = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                srv.hits.append(self.path)
                p = self.path
                if p.startswith("/img.png"):
                    self._send(200, PNG, "image/png")
                elif p == "/page.html":
                    self._send(200, b"<html>internal admin page</html>", "image/png")  # lies about its type
                elif p == "/big":  # no Content-Length: the size shows only while reading
                    self.send_response(200)
                    self.send_header("content-type", "image/png")
                    self.end_headers()
                    try:
                        self.wfile.write(PNG + b"\0" * (4 * 1024 * 1024))
                    except OSError:
                        pass
                elif p == "/slow":
                    self.send_response(200)
                    self.send_header("content-type", "image/png")
                    self.end_headers()
                    try:
                        for b in PNG:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(0.3)
                    except OSError:
                        pass
                elif p.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("location", p.split("=", 1)[1])
                    self.send_header("content-length", "0")
                    self.end_headers()
                elif p.startswith("/hop/"):
                    n = int(p.rsplit("/", 1)[1])
                    self.send_response(302)
                    self.send_header("location", f"/hop/{n + 1}")
                    self.send_header("content-length", "0")
                    self.end_headers()
                else:
                    self._send(404, b"no", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def images():
    s = ImageServer()
    yield s
    s.close()


def with_image(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def gateway_with(gateway: Any, openai_up: Any, anthropic_up: Any, policy: str | None = None, **fetch: Any) -> Any:
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    if policy is not None:
        cfg["providers"]["localsrv"]["image_urls"] = policy
    if fetch:
        cfg["server"]["image_fetch"] = fetch
    return gateway(cfg)


def test_a_local_model_is_not_sent_image_urls_by_default(gateway, openai_up, anthropic_up, images):
    g = gateway_with(gateway, openai_up, anthropic_up)
    for url in (images.url + "/img.png", "http://169.254.169.254/latest/meta-data/", "https://example.com/cat.png"):
        with pytest.raises(openai.BadRequestError) as e:
            oai(g).chat.completions.create(model="local", messages=with_image(url))
        assert "image URL" in e.value.message and "image_urls: fetch" in e.value.message
        assert e.value.body["type"] == "invalid_request_error"
        with pytest.raises(anthropic.BadRequestError) as ae:  # the Anthropic API's schema, the same refusal
            ant(g).messages.create(model="local", max_tokens=10, messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": url}}]}])
        assert ae.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        oai(g).responses.create(model="local", input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": images.url + "/img.png", "detail": "auto"}]}])
    assert openai_up.requests == [] and images.hits == []  # nothing reached the local server or the address
    # inline images still go; a remote API gets the URL as sent (it fetches from its own network)
    openai_up.script(Reply(text="a pixel"))
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert oai(g).chat.completions.create(model="local", messages=with_image(data_url)).choices[0].message.content
    anthropic_up.script(Reply(text="a cat"))
    oai(g).chat.completions.create(model="frontier", messages=with_image("https://example.com/cat.png"))
    sent = anthropic_up.requests[-1].body["messages"][0]["content"][1]
    assert sent["source"] == {"type": "url", "url": "https://example.com/cat.png"}


def test_the_gateway_fetches_and_inlines_when_asked(gateway, openai_up, anthropic_up, images):
    g = gateway_with(gateway, openai_up, anthropic_up, "fetch", allow_networks=["127.0.0.1/32"])
    openai_up.script(Reply(text="a pixel"), Reply(text="a pixel"))
    r = oai(g).chat.completions.create(model="local", messages=with_image(images.url + "/img.png?token=abc"))
    assert r.choices[0].message.content == "a pixel"
    part = openai_up.requests[-1].body["messages"][0]["content"][1]
    assert part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    # through a redirect on an allowed address too
    oai(g).chat.completions.create(model="local", messages=with_image(f"{images.url}/redirect?to=/img.png"))
    assert openai_up.requests[-1].body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png")


@pytest.mark.parametrize("path, why", [
    ("/page.html", "not a PNG, JPEG, GIF or WebP"),
    ("/big", "larger than"),
    ("/slow", "not fetched within"),
    ("/hop/0", "redirects"),
    ("/missing.png", "HTTP 404"),
])
def test_fetching_is_bounded(gateway, openai_up, anthropic_up, images, path, why):
    g = gateway_with(gateway, openai_up, anthropic_up, "fetch", allow_networks=["127.0.0.1/32"],
                     max_bytes=1024 * 1024, timeout=1.0, max_redirects=2)
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="local", messages=with_image(images.url + path))
    assert why in e.value.message, e.value.message
    assert "internal admin page" not in e.value.message and openai_up.requests == []


def test_fetching_refuses_addresses_that_are_not_public(gateway, openai_up, anthropic_up, images):
    port = images.url.rsplit(":", 1)[1]
    g = gateway_with(gateway, openai_up, anthropic_up, "fetch", timeout=2.0, max_redirects=3)
    for url in (f"http://127.0.0.1:{port}/img.png", f"http://localhost:{port}/img.png",
                f"http://[::ffff:127.0.0.1]:{port}/img.png", f"http://2130706433:{port}/img.png",
                f"http://0x7f.1:{port}/img.png", "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.1/x.png", "http://[::1]/x.png", "http://[fd00::1]/x.png", "http://0.0.0.0/x.png",
                # IDNA maps these to 127.0.0.1 after the check (circled digits, ideographic full stops)
                f"http://\u2460\u2461\u2466.0.0.1:{port}/img.png", f"http://127\u30020\u30020\u30021:{port}/img.png",
                f"http://[::127.0.0.1]:{port}/img.png", f"http://[::ffff:0:7f00:1]:{port}/img.png",
                f"http://0177.0.0.1:{port}/img.png", f"http://127.1:{port}/img.png", f"http://[fe80::1%25lo]:{port}/img.png",
                f"http://evil@127.0.0.1:{port}/img.png", f"http://127.0.0.1:{port}#@example.com/img.png"):
        with pytest.raises(openai.BadRequestError) as e:
            oai(g).chat.completions.create(model="local", messages=with_image(url))
        assert "image URL" in e.value.message and ("not a public address" in e.value.message
                                                   or "could not be fetched" in e.value.message), (url, e.value.message)
    assert images.hits == [] and openai_up.requests == []


def test_a_redirect_is_checked_again(gateway, openai_up, anthropic_up, images):
    """An allowed server that redirects to an address that is not: refused at the hop."""
    other = ImageServer("127.0.0.2")
    try:
        g = gateway_with(gateway, openai_up, anthropic_up, "fetch", allow_networks=["127.0.0.1/32"])
        with pytest.raises(openai.BadRequestError) as e:
            oai(g).chat.completions.create(model="local",
                                           messages=with_image(f"{images.url}/redirect?to={other.url}/img.png"))
        assert "not a public address" in e.value.message
        assert other.hits == [] and openai_up.requests == []
    finally:
        other.close()


def test_one_lookup_and_the_connection_goes_to_the_checked_address(images, monkeypatch):
    """DNS rebinding: a name that answers a harmless address when checked and a private one when
    connected. The fetcher resolves once, checks every answer, and connects to what it checked."""
    port = int(images.url.rsplit(":", 1)[1])
    answers = [["127.0.0.1"], ["10.9.9.9"]]  # what a rebinding resolver would answer, call by call
    calls: list[str] = []

    async def fake_resolve(self: Any, host: str, port: int = 0, family: Any = 0) -> Any:
        calls.append(host)
        import socket

        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
                for a in answers[min(len(calls) - 1, 1)]]

    monkeypatch.setattr(image_urls.ThreadedResolver, "resolve", fake_resolve)

    async def go() -> Any:
        f = image_urls.ImageFetcher(ImageFetchConfig(allow_networks=["127.0.0.1/32"], timeout=5))
        try:
            return await f.fetch(f"http://rebind.test:{port}/img.png")
        finally:
            await f.close()

    assert asyncio.run(go()) == ("image/png", PNG)
    assert calls == ["rebind.test"] and images.hits == ["/img.png"]
    # a name with one answer that is not allowed among others: refused, nothing connected
    answers[:] = [["127.0.0.1", "10.9.9.9"]] * 2
    calls.clear()
    with pytest.raises(image_urls.InvalidRequest) as e:
        asyncio.run(go())
    assert "not a public address" in e.value.message and images.hits == ["/img.png"]


def test_public_covers_the_ipv6_spellings_of_private_addresses():
    import ipaddress

    for a in ("::ffff:127.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
              "100.64.0.1", "169.254.169.254", "224.0.0.1", "ff02::1", "fe80::1", "::", "0.0.0.0",
              "::127.0.0.1", "::ffff:0:7f00:1", "64:ff9b:1::a00:1", "64:ff9b:1::808:808"):
        assert not image_urls.public(ipaddress.ip_address(a)), a
    for a in ("8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"):
        assert image_urls.public(ipaddress.ip_address(a)), a


def test_count_tokens_does_not_carry_image_urls_to_a_local_server(gateway, openai_up, anthropic_up, images):
    """`/v1/messages/count_tokens` sends the client's body to an Anthropic-format upstream as it is: a local
    one (llama.cpp's server speaks the Anthropic API) must not get the image URL there either."""
    cfg = two_tier_config(anthropic_up.url, openai_up.url, local_kind="anthropic", remote_kind="openai")
    g = gateway(cfg)
    n = ant(g).messages.count_tokens(model="local", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image", "source": {"type": "url", "url": images.url + "/img.png"}}]}])
    assert n.input_tokens > 0  # the gateway's estimate
    assert anthropic_up.requests == [] and images.hits == []


def test_document_urls_do_not_reach_a_local_server_either(gateway, openai_up, anthropic_up, images):
    """Anthropic `document` blocks are carried as sent to an Anthropic-format upstream, URL sources included."""
    cfg = two_tier_config(anthropic_up.url, openai_up.url, local_kind="anthropic", remote_kind="openai")
    g = gateway(cfg)
    doc = {"type": "document", "source": {"type": "url", "url": images.url + "/report.pdf"}}
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="local", max_tokens=10, messages=[{"role": "user", "content": [
            doc, {"type": "text", "text": "summarise"}]}])
    assert "document URL" in e.value.message
    n = ant(g).messages.count_tokens(model="local", messages=[{"role": "user", "content": [
        doc, {"type": "text", "text": "summarise"}]}])
    assert n.input_tokens > 0
    assert anthropic_up.requests == [] and images.hits == []


def test_waiting_for_a_fetch_slot_counts_in_the_timeout(images):
    """`max_concurrent` slow images hold every fetch slot: a request behind them waits at most `timeout`,
    not for the queue to drain."""
    async def go() -> list[str]:
        f = image_urls.ImageFetcher(ImageFetchConfig(allow_networks=["127.0.0.1/32"], timeout=1.0, max_concurrent=1))
        await f.slots.acquire()  # every slot held (by slow fetches of other requests)
        try:
            await asyncio.wait_for(f.fetch(images.url + "/img.png"), 10)
        except image_urls.InvalidRequest as e:
            return [e.message]
        except TimeoutError:
            return ["still waiting after 10 s"]
        finally:
            await f.close()
        return []

    got = asyncio.run(go())
    assert got and "not fetched within 1 s" in got[0], got
    assert images.hits == []


@pytest.mark.parametrize("stream", [False, True])
def test_an_image_url_is_fetched_once_per_request(gateway, openai_up, anthropic_up, images, stream):
    """Retries, fallbacks and a URL named twice reuse the request's one fetch: each fetch is a request
    the gateway makes for the client, to a server the client picked."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local", "local2"], "retries": 2, "backoff_base": 0}})
    cfg["providers"]["localsrv"]["image_urls"] = "fetch"
    cfg["models"]["local2"] = {"provider": "localsrv", "model": "qwen-other"}
    cfg["server"]["image_fetch"] = {"allow_networks": ["127.0.0.1/32"]}
    g = gateway(cfg)
    # the first deployment fails all three tries; the second answers on its second try
    openai_up.script(Fail(503), Fail(503), Fail(503), Fail(503), Reply(text="a pixel"))
    url = images.url + "/img.png?n=1"
    msgs = [{"role": "user", "content": [{"type": "text", "text": "the same picture twice"},
                                         {"type": "image_url", "image_url": {"url": url}},
                                         {"type": "image_url", "image_url": {"url": url}}]}]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in oai(g).chat.completions.create(
            model="main", messages=msgs, stream=True) if c.choices)
    else:
        text = oai(g).chat.completions.create(model="main", messages=msgs).choices[0].message.content
    assert text == "a pixel"
    assert len(openai_up.requests) == 5  # five upstream calls ...
    assert images.hits == ["/img.png?n=1"]  # ... one fetch
    for r in openai_up.requests:
        parts = r.body["messages"][0]["content"]
        assert [p["image_url"]["url"][:22] for p in parts[1:]] == ["data:image/png;base64,"] * 2

