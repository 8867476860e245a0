"""HTTP transport to one upstream provider: auth headers, timeouts, and the mapping of every
transport failure to `UpstreamError` with a message that never carries a secret. Redirects are
never followed (the key headers would go to the host the upstream names).

Each provider has an aiohttp session of its own (the gateway makes it): its pool holds at most the
provider's `max_connections`, and a call waits at most `timeouts.pool` for one of them (then 503).
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from tierwise.config import ProviderConfig
from tierwise.endpoint_url import endpoint
from tierwise.errors import UpstreamError, UpstreamTimeout
from tierwise.providers import error_pages
from tierwise.providers.api_shape import hint, other_api
from tierwise.providers.error_classes import upstream_error
from tierwise.providers.streamed_body import BOM, StreamedBody, streamed
from tierwise.secret_scrub import note

ERROR_BODY_BYTES = 64 * 1024  # an error body is a short message; the rest of a longer one is not read


WRONG_KIND_STATUSES = frozenset({401, 403, 404, 405})
MAX_RETRY_AFTER_S = 86_400.0  # an upstream's Retry-After beyond a day is read as a day


def _retry_after(headers: Any) -> float | None:
    """The upstream's Retry-After in seconds: a finite number, at most a day (`inf`, `1e400` and `nan`
    from a hostile upstream are no wait the gateway can pass on or sleep on). RFC 9110 also allows an
    HTTP date: it is read as the seconds from now to it, bounded the same way (a past date is 0)."""
    v = headers.get("retry-after") if headers is not None else None
    if not v:
        return None
    try:
        seconds = float(v)
    except ValueError:
        until = _date_in_seconds(v)
        if until is None:
            return None
        seconds = until
    if not math.isfinite(seconds):
        return None if math.isnan(seconds) else MAX_RETRY_AFTER_S
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def _date_in_seconds(v: str) -> float | None:
    """Seconds from now to an HTTP-date Retry-After (`Sun, 06 Nov 1994 08:49:37 GMT`), None if it is not one."""
    if len(v) > 64:  # an HTTP date is 29 characters; a longer value is not one
        return None
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP date is always UTC ("-0000" parses without a zone)
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - time.time()


class Provider:
    """One upstream server: where it is, how to authenticate, how long to wait."""

    def __init__(self, name: str, cfg: ProviderConfig, session_getter: Any) -> None:
        self.name = name
        self.cfg = cfg
        self.kind = cfg.kind
        self.locality = cfg.locality
        self._session = session_getter
        self.unreachable_said = False  # the console named its URL since its last answer (deployment.py)
        t = cfg.timeouts
        # Streams may run as long as events keep coming (the relay guards stalls between events);
        # a whole answer has a deadline, so an upstream trickling bytes (slow loris) cannot hold it.
        # `connect` bounds the wait for one of the pool's `max_connections` (a hung upstream holds them
        # all) plus the connect itself; `sock_connect` the connect alone.
        pool = max(t.pool, t.connect)
        self.timeout = aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=t.connect, sock_read=t.read)
        self.whole_timeout = aiohttp.ClientTimeout(total=t.total, connect=pool, sock_connect=t.connect,
                                                   sock_read=t.read)
        # A stream's response head must be whole within `read` of the connection (its wait included): `sock_read`
        # restarts on every byte, so an upstream that sent `100 Continue` (or one header line) every few seconds
        # held a streamed call, its pooled connection and the client for ever (wire6); `stream_total` starts
        # with the body.
        self.head_s = pool + t.read
        if cfg.kind == "openai":
            self.chat_url = endpoint(cfg.base_url, "/chat/completions")
        else:
            self.chat_url = endpoint(cfg.base_url, "/v1/messages")

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._session()  # type: ignore[no-any-return]

    def headers(self, client_headers: dict[str, str] | None = None) -> dict[str, str]:
        h = {"content-type": "application/json", **self.cfg.headers}
        key = self.cfg.api_key()
        note(key)  # read from the environment now: a rotated key must be known to the scrubber
        if self.kind == "openai":
            if key:
                h["authorization"] = f"Bearer {key}"
        else:
            if key:
                h["x-api-key"] = key
            ch = client_headers or {}
            h["anthropic-version"] = ch.get("anthropic-version", "2023-06-01")
            if "anthropic-beta" in ch:
                h["anthropic-beta"] = ch["anthropic-beta"]
        return h

    def missing_key(self) -> bool:
        return bool(self.cfg.api_key_env) and not self.cfg.api_key()

    async def open(self, url: str, body: bytes, headers: dict[str, str],
                   timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """POST and return the response once its status is 2xx; raise UpstreamError otherwise."""
        if self.missing_key():
            raise UpstreamError(
                f"provider {self.name!r} has no API key: set the environment variable {self.cfg.api_key_env}",
                status=502,
                retryable=False,
                error_class="auth",  # the gateway's configuration: no retry outlives it (policies/fallback.py)
            )
        t0 = time.monotonic()
        try:
            # No redirects: aiohttp would re-send the body with every header but `Authorization` to
            # whatever host the upstream names (`x-api-key` and the config's key headers included).
            if timeout is None:  # a stream: its head within `head_s` (a whole answer has `total` over all of it)
                async with asyncio.timeout(self.head_s):
                    resp = await self.session.post(url, data=body, headers=headers, timeout=self.timeout,
                                                   allow_redirects=False)
            else:
                resp = await self.session.post(url, data=body, headers=headers, timeout=timeout,
                                               allow_redirects=False)
        except aiohttp.ConnectionTimeoutError:
            if time.monotonic() - t0 < self.cfg.timeouts.pool:  # the connect itself timed out
                raise UpstreamTimeout(f"provider {self.name!r} did not answer in time") from None
            raise self.busy() from None
        except TimeoutError:  # (not the connect's: the request went out, the upstream is answering)
            raise mark_answering(UpstreamTimeout(f"provider {self.name!r} did not answer in time")) from None
        except aiohttp.ClientConnectorError:
            # Not its base_url: a client must not learn the gateway's internal addresses. It says what to check;
            # the gateway's console names the URL (providers/deployment.py, once per outage).
            err = UpstreamError(f"cannot connect to provider {self.name!r}: is its model server running? "
                                "(`tierwise doctor` on the gateway's host checks it)", retryable=True)
            err.connect_failed = True
            raise err from None
        except aiohttp.ClientResponseError:  # aiohttp could not parse the answer's HTTP (bad chunk sizes, CL+TE)
            raise UpstreamError(f"provider {self.name!r} sent a malformed HTTP response", retryable=True) from None
        except aiohttp.ServerDisconnectedError:
            raise UpstreamError(f"provider {self.name!r} closed the connection without a whole answer",
                                retryable=True) from None
        except aiohttp.ClientError as e:
            raise UpstreamError(f"provider {self.name!r}: {type(e).__name__}", retryable=True) from None
        if resp.status < 300:
            return resp
        try:
            raw = await resp.content.read(ERROR_BODY_BYTES)
        except (TimeoutError, aiohttp.ClientError):
            raw = b""
        finally:
            resp.close()  # not release(): the unread rest of a long body must not stay on a pooled connection
        raise self.status_error(resp.status, raw, resp.headers)

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """The whole body, or UpstreamError once it passes `max_response_bytes` (the upstream is not trusted
        to stop)."""
        cap = self.cfg.max_response_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise self.too_large()  # (even compressed, it is larger)
        parts: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > cap:
                resp.close()
                raise self.too_large()
            parts.append(chunk)
        return b"".join(parts)

    def busy(self) -> UpstreamError:
        err = UpstreamError(f"provider {self.name!r} has {self.cfg.max_connections} calls in flight "
                             f"(max_connections) and none ended within {self.cfg.timeouts.pool:g}s (timeouts.pool)",
                             status=503, retryable=True, retry_after=1.0, kind="overloaded_error",
                             error_class="overloaded")
        err.pool_full = True  # (not the upstream's failure: providers/error_classes.counts_against_deployment)
        return err

    def too_large(self) -> UpstreamError:
        return UpstreamError(f"provider {self.name!r} sent an answer larger than {self.cfg.max_response_bytes} bytes "
                             "(max_response_bytes)", retryable=False)

    def status_error(self, status: int, raw: bytes, headers: Any = None) -> UpstreamError:
        msg = ""
        err_obj: dict[str, Any] | None = None
        blocked = False
        try:
            body = orjson.loads(raw)
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                err_obj = err
                msg = str(err.get("message") or "")
            elif isinstance(err, str):  # Ollama's native shape: {"error": "..."}
                msg = err
            elif isinstance(body, dict) and isinstance(body.get("message"), str):  # vLLM's older {"object": "error"}
                err_obj = body
                msg = body["message"]
            msg = error_pages.masked(msg, status)  # (a proxy's words: its hosts)
            # Only where a wrong kind shows (its endpoint or auth header unknown there): llama.cpp, vLLM and Ollama
            # also serve the Anthropic API and answer its 400s, 429s and 5xx in OpenAI's shape.
            if status in WRONG_KIND_STATUSES and (other := other_api(self.cfg.kind, body)) is not None:
                msg = f"{msg} ({hint(self.cfg.kind, other)})" if msg else hint(self.cfg.kind, other)
        except orjson.JSONDecodeError:  # a proxy's or CDN's page: its status and reason, not its words
            msg, blocked = error_pages.client_message(self.name, status, raw, headers)
        if 300 <= status < 400:
            # Its Location is not shown (it is the upstream's to choose, and could carry anything).
            msg = "a redirect, which the gateway does not follow (check the provider's base_url)"
        return upstream_error(self.name, status, err_obj, msg, _retry_after(headers), blocked=blocked)

    async def post_json(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[Any, bytes]:
        resp = await self.open(url, body, headers, self.whole_timeout)
        try:
            n = resp.content_length
            if n is not None and n <= self.cfg.max_response_bytes and "Content-Encoding" not in resp.headers:
                raw = await resp.read()  # aiohttp reads exactly Content-Length bytes: bounded already
            else:  # no length, or a compressed one: what it inflates to is counted as it comes (a gzip bomb)
                raw = await self._read_capped(resp)
        except TimeoutError:
            raise mark_answering(UpstreamTimeout(
                f"provider {self.name!r} did not finish its answer in time (timeouts.read / timeouts.total)"
            )) from None
        except aiohttp.ClientError:
            raise mark_answering(UpstreamError(f"provider {self.name!r} cut its answer short", retryable=True)) from None
        except UpstreamError as e:  # too large
            raise mark_answering(e) from None
        finally:
            resp.release()
        try:
            return orjson.loads(raw), raw
        except orjson.JSONDecodeError:
            if raw[:3] == BOM:  # (review36b: orjson refuses a byte order mark)
                try:
                    return orjson.loads(raw[3:]), raw[3:]
                except orjson.JSONDecodeError:
                    pass
            if streamed(raw):  # a stream where a whole answer was asked (providers/streamed_body.py)
                raise mark_answering(StreamedBody(f"provider {self.name!r} answered with a stream", raw)) from None
            raise mark_answering(UpstreamError(f"provider {self.name!r} sent a body that is not valid JSON",
                                           retryable=True)) from None


def mark_answering(e: UpstreamError) -> UpstreamError:
    """`e`, marked as a failure after the upstream had the whole request and was answering (errors.py)."""
    e.answering = True
    return e
