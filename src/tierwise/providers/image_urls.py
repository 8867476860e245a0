"""What happens to http(s) image URLs a client sends, per provider (`providers.<name>.image_urls`).

A local model server that fetches image URLs (vLLM, llama.cpp's server, others) would fetch them
from the gateway host's network for whoever can reach the gateway: the cloud metadata address,
an admin page on loopback, a LAN service (docs/security/reach.md). So by default a local provider
gets none (`refuse`: a 400 in the client's schema), a remote API fetches them from its own cloud
(`forward`), and `fetch` makes the gateway fetch them itself, bounded (`server.image_fetch`), and
send them inline as base64:

- only public addresses (not private, loopback, link-local, shared, reserved, multicast, nor an IPv6
  form embedding one), unless a network is listed in `allow_networks`;
- the name is resolved once, every address checked, and the connection made to a checked address
  (a resolver inside the connector: no second lookup, so no DNS-rebinding gap); no proxy from the
  environment (a proxy would resolve the name again);
- redirects followed by hand, each target checked again, at most `max_redirects`;
- at most `max_bytes` read, within `timeout` seconds; the bytes must be a PNG, JPEG, GIF or WebP
  image (by their signature, not the server's Content-Type); at most `max_images` per request and
  `max_concurrent` fetches in the whole gateway;
- each URL fetched once per request: retries, fallbacks and the other calls of a policy reuse the
  outcome (the image, or the refusal), so a client's URL costs one fetch however the request is routed.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import yarl
from aiohttp.resolver import ThreadedResolver

from tierwise.canonical import ImageBlock, Message, Request, ToolResultBlock
from tierwise.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Prefixes whose last 32 bits are an IPv4 address: NAT64 (RFC 6052), IPv4-compatible (`::127.0.0.1`,
# deprecated, still parsed) and IPv4-translated (`::ffff:0:127.0.0.1`, SIIT).
EMBEDS_IPV4_LOW = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"),
                   ipaddress.ip_network("::ffff:0:0:0/96"))
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
              (b"GIF89a", "image/gif"))
CHUNK = 64 * 1024
FETCHED = "image_urls.fetched"  # the request's fetches (Context.notes): each URL fetched once per request


def is_remote_url(url: str | None) -> bool:
    return bool(url) and url[:8].lower().startswith(("http://", "https://"))  # type: ignore[index]


def remote_images(req: Request) -> list[ImageBlock]:
    out: list[ImageBlock] = []
    for m in req.messages:
        for b in m.content:
            if isinstance(b, ImageBlock) and is_remote_url(b.url):
                out.append(b)
            elif isinstance(b, ToolResultBlock):
                out.extend(c for c in b.content if isinstance(c, ImageBlock) and is_remote_url(c.url))
    return out


def remote_documents(req: Request) -> list[str]:
    """The http(s) URLs of Anthropic `document` blocks (carried as sent to an Anthropic-format upstream)."""
    out: list[str] = []
    for m in req.messages:
        blocks = [c for b in m.content for c in (b.content if isinstance(b, ToolResultBlock) else [b])]
        for b in blocks:
            raw = getattr(b, "raw", None)
            src = raw.get("source") if isinstance(raw, dict) and raw.get("type") == "document" else None
            if isinstance(src, dict) and src.get("type") == "url" and is_remote_url(src.get("url")):
                out.append(src["url"])
    return out


def public(addr: Address) -> bool:
    """Reachable on the public internet, and no IPv6 spelling of an address that is not."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in NAT64_LOCAL:  # local-use NAT64 (RFC 8215): a translator on the operator's own network
            return False
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is None and any(addr in n for n in EMBEDS_IPV4_LOW):
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None and not public(embedded):
            return False
    return addr.is_global and not addr.is_multicast


def describe(url: str) -> str:
    """The URL as an error may show it: scheme and host (a query string may hold the client's token)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}"[:200]
    except ValueError:
        return "the URL"


class Refused(Exception):
    """An address the gateway does not fetch from."""


class CheckedResolver(ThreadedResolver):
    """Resolves once and returns only checked addresses: the connector connects to exactly these."""

    def __init__(self, allowed: list[Any]) -> None:
        super().__init__()
        self.allowed = allowed

    def check(self, host: str) -> None:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
        if not (public(addr) or any(addr in n for n in self.allowed)):
            raise Refused(f"{addr} is not a public address")

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
        found = await super().resolve(host, port, family)
        for r in found:  # every answer checked: one bad address refuses the name (no mixed answers)
            self.check(r["host"])
        return found


class ImageFetcher:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in cfg.allow_networks]
        self.slots = asyncio.Semaphore(cfg.max_concurrent)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: CheckedResolver | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._resolver = CheckedResolver(self.allowed)
            connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False, limit=self.cfg.max_concurrent)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def inline(self, req: Request, where: str, fetched_before: dict[str, Any] | None = None) -> Request:
        """`req` with every http(s) image fetched and inlined; 400 when one cannot be.

        `fetched_before` (the request's own, kept in its context) maps each URL to its fetch: a URL
        already fetched for this request (by an earlier attempt, or twice in it) is not fetched again."""
        images = remote_images(req)
        if not images:
            return req
        if len(images) > self.cfg.max_images:
            raise InvalidRequest(f"{len(images)} image URLs in one request; {where} takes at most "
                                 f"{self.cfg.max_images} (server.image_fetch.max_images)")
        memo = {} if fetched_before is None else fetched_before
        for b in images:
            url = b.url or ""
            if url not in memo:
                task = memo[url] = asyncio.ensure_future(self.fetch(url))
                task.add_done_callback(_retrieved)
        # shielded: a caller cancelled (a hedge lost, a client gone) leaves the fetch to the request's
        # other callers; it ends within `timeout` whatever happens
        fetched = await asyncio.gather(*(asyncio.shield(memo[b.url or ""]) for b in images))
        done = {id(b): ImageBlock(media_type=mt, data=base64.b64encode(data).decode(), detail=b.detail)
                for b, (mt, data) in zip(images, fetched, strict=True)}
        return req.with_changes(messages=[_swap(m, done) for m in req.messages])

    async def fetch(self, url: str) -> tuple[str, bytes]:
        shown = describe(url)
        try:  # the wait for a fetch slot counts in the timeout too: a queue of requests waits at most that long
            return await asyncio.wait_for(self._in_slot(url), self.cfg.timeout)
        except TimeoutError:
            raise InvalidRequest(f"image URL {shown}: not fetched within {self.cfg.timeout:g} s "
                                 "(server.image_fetch.timeout)") from None
        except Refused as e:
            raise InvalidRequest(f"image URL {shown}: the gateway does not fetch from {e} "
                                 "(server.image_fetch.allow_networks)") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise InvalidRequest(f"image URL {shown}: could not be fetched ({type(e).__name__})") from None

    async def _in_slot(self, url: str) -> tuple[str, bytes]:
        async with self.slots:
            return await self._follow(url)

    async def _follow(self, url: str) -> tuple[str, bytes]:
        session = self.session()
        assert self._resolver is not None
        for _ in range(self.cfg.max_redirects + 1):
            # Parsed once, as the client library will use it: the host checked is the one connected to.
            # (IDNA maps `①②⑦.0.0.1` and `127。0。0。1` to 127.0.0.1, a literal address that the
            # connector then uses without asking the resolver.)
            target = yarl.URL(url)
            if target.scheme not in ("http", "https") or not target.raw_host:
                raise InvalidRequest(f"image URL {describe(url)}: must be http(s)")
            try:  # a literal address is not resolved by the connector: checked here
                self._resolver.check(target.raw_host)
            except ValueError:
                pass  # a name: checked by the resolver when the connection is made
            async with session.get(target, allow_redirects=False, headers={"accept": "image/*"}) as r:
                if r.status in (301, 302, 303, 307, 308):
                    loc = r.headers.get("location")
                    if not loc:
                        raise InvalidRequest(f"image URL {describe(url)}: a redirect without a Location")
                    url = urljoin(url, loc)
                    continue
                if r.status != 200:
                    raise InvalidRequest(f"image URL {describe(url)}: answered HTTP {r.status}")
                return await self._read(r, url)
        raise InvalidRequest(f"image URL {describe(url)}: more than {self.cfg.max_redirects} redirects "
                             "(server.image_fetch.max_redirects)")

    async def _read(self, r: aiohttp.ClientResponse, url: str) -> tuple[str, bytes]:
        cap = self.cfg.max_bytes
        too_big = InvalidRequest(f"image URL {describe(url)}: larger than {cap} bytes (server.image_fetch.max_bytes)")
        if r.content_length is not None and r.content_length > cap:
            raise too_big
        if r.headers.get("content-encoding", "identity").lower() != "identity":
            raise InvalidRequest(f"image URL {describe(url)}: sent with a content encoding; images are sent as they are")
        parts, size = [], 0
        async for chunk in r.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > cap:
                raise too_big
            parts.append(chunk)
        data = b"".join(parts)
        mt = media_type(data)
        if mt is None:
            raise InvalidRequest(f"image URL {describe(url)}: not a PNG, JPEG, GIF or WebP image")
        return mt, data


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A fetch's failure is read even when no caller is left to read it (no 'never retrieved' warning)."""
    if not task.cancelled():
        task.exception()


def media_type(data: bytes) -> str | None:
    for sig, mt in SIGNATURES:
        if data.startswith(sig):
            return mt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _swap(m: Message, done: dict[int, ImageBlock]) -> Message:
    if not any(id(b) in done or isinstance(b, ToolResultBlock) for b in m.content):
        return m
    blocks: list[Any] = []
    for b in m.content:
        if isinstance(b, ToolResultBlock):
            b = replace(b, content=[done.get(id(c), c) for c in b.content])
        blocks.append(done.get(id(b), b))
    return replace(m, content=blocks)


class ImageUrlPolicy:
    """The seam a deployment calls before encoding a request for its provider."""

    def __init__(self, provider_name: str, policy: str, fetcher: ImageFetcher | None) -> None:
        self.provider = provider_name
        self.policy = policy
        self.fetcher = fetcher

    async def apply(self, req: Request, deployment: str, ctx: Any = None) -> Request:
        if self.policy == "forward":
            return req
        docs = remote_documents(req)
        if docs:  # not fetched by the gateway either (a PDF is not an image it can check)
            raise InvalidRequest(
                f"document URL {describe(docs[0])}: the model {deployment!r} is not sent document URLs; send the "
                "document inline (base64)")
        if not req.has_images():
            return req
        if self.policy == "refuse":
            found = remote_images(req)
            if found:
                raise InvalidRequest(
                    f"image URL {describe(found[0].url or '')}: the model {deployment!r} runs on this gateway's "
                    "network and is not sent image URLs; send the image inline (a data: URL or base64), or let the "
                    f"gateway fetch it (providers.{self.provider}.image_urls: fetch)")
            return req
        assert self.fetcher is not None
        memo = None if ctx is None else ctx.notes.setdefault(FETCHED, {})
        return await self.fetcher.inline(req, f"model {deployment!r}", memo)


def install(gateway: Any) -> ImageFetcher | None:
    """Give each deployment its provider's policy (none for `forward`); the fetcher, when one provider fetches."""
    fetcher = None
    for d in gateway.deployments.values():
        policy = d.provider.cfg.image_url_policy
        if policy == "forward":
            continue
        if policy == "fetch" and fetcher is None:
            fetcher = ImageFetcher(gateway.cfg.server.image_fetch)
        d.images = ImageUrlPolicy(d.provider.name, policy, fetcher if policy == "fetch" else None)
    return fetcher
