"""An upstream error answer that is not the provider's API: an HTML page of a proxy, load balancer or CDN in front of
it, a WAF/CDN block page, or plain text. What the client hears of it, and what the operator's log keeps.

Such pages name the proxy's host, the internal address it could not reach (nginx: `upstream:
"http://10.20.3.4:8080/..."`), the cloud host it runs on, the gateway's own public address (Cloudflare's "Your IP"):
before, the client read the page's first 300 characters. Now the client hears the status, its standard reason and
what answered (never the page's words); the log keeps a scrubbed, tag-free excerpt. Plain text (a llama.cpp or a Go
proxy's one line) is still repeated, its URLs and internal addresses masked (providers/address_mask.py).

A WAF's or CDN's block page (Cloudflare "Attention Required! ... you have been blocked", Akamai "Access Denied", AWS
WAF, Imperva, ModSecurity) answers 403 before the provider has seen the request or the gateway's key: it was read as
the key refused (a config fault: the 502 named the key, and the breaker it opened repeated that to every client).
It is `blocked`: the request's content or the gateway's address; a route moves on; no breaker count (one client's
text may draw it); not retried (the same request is blocked again).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from tierwise.providers.address_mask import json_mask, readable, text_mask
from tierwise.secret_scrub import scrub, scrub_cut, upstream_text

log = logging.getLogger("tierwise.providers")

EXCERPT_CHARS = 300
# Linear: an unclosed script, style or comment runs to the page's end, and a tag ends at the next `<` (before, each
# unclosed opener was searched for its end to the page's end: 16 KiB of `<!--` held the event loop 0.46 s).
_TAGS = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)|<[^<>]*>|<", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_PAGE = re.compile(rb"<(?:!doctype|html|head|body|title)\b", re.IGNORECASE)  # a page, wherever it starts
# Headers that say a block whatever the body: Cloudflare's challenge/block, AWS WAF's action.
_BLOCK_HEADERS = ("cf-mitigated", "x-amzn-waf-action")

# Marks of a firewall or CDN that blocked the request (lower-cased page text or header names/values) -> who.
_VENDORS = (("cloudflare", "Cloudflare"), ("cf-ray", "Cloudflare"), ("akamai", "Akamai"),
            ("reference&#32;&#35;", "Akamai"), ("incapsula", "Imperva"), ("imperva", "Imperva"),
            ("sucuri", "Sucuri"), ("awswaf", "AWS WAF"), ("x-amzn-waf", "AWS WAF"), ("cloudfront", "CloudFront"),
            ("mod_security", "ModSecurity"), ("modsecurity", "ModSecurity"), ("fortiweb", "FortiWeb"),
            ("barracuda", "Barracuda"), ("f5 ", "F5"), ("the requested url was rejected", "F5"))
_BLOCK_WORDS = ("you have been blocked", "attention required", "access denied", "request blocked",
                "request rejected", "the requested url was rejected", "web application firewall", "security service",
                "not acceptable", "captcha", "cf-mitigated", "forbidden")
BLOCK_STATUSES = frozenset({403, 406})


def is_html(raw: bytes, content_type: str) -> bool:
    """A page: so labelled, or its tags in its first KiB (after a byte-order mark, or a line of text, as proxies
    send it labelled text/plain)."""
    return "html" in content_type.lower() or raw.lstrip()[:1] == b"<" or _PAGE.search(raw[:1024]) is not None


def page_text(raw: bytes) -> str:
    """The words of a page, tags, scripts and styles gone, spaces collapsed (of at most the 64 KiB read)."""
    return _SPACE.sub(" ", _TAGS.sub(" ", raw.decode("utf-8", "replace"))).strip()


def blocker(status: int, raw: bytes, headers: Any) -> str | None:
    """Who blocked the request ("Cloudflare", ..., or "a firewall or CDN") when this answer is a block page, else
    None: a 403/406 whose headers say a block (`cf-mitigated`, `x-amzn-waf-action`), or whose page (HTML) carries a
    firewall's or CDN's marks and words of a block. The marks are the page's own: a provider behind a CDN carries
    its headers (`server: cloudflare`, `cf-ray`) on every answer, its origin's "403 Forbidden" (its key refused) too."""
    if status not in BLOCK_STATUSES:
        return None
    if headers is not None and any(h in headers for h in _BLOCK_HEADERS):
        said = " ".join(f"{k}: {v}" for k, v in headers.items()).lower()
        return next((name for mark, name in _VENDORS if mark in said), "a firewall or CDN")
    if not is_html(raw, str(headers.get("content-type", "")) if headers is not None else ""):
        return None
    marks = raw[:16384].decode("utf-8", "replace").lower()
    who = next((name for mark, name in _VENDORS if mark in marks), None)
    if who is None and not any(w in marks for w in _BLOCK_WORDS[:6]):
        return None
    if who is not None and not any(w in marks for w in _BLOCK_WORDS):
        return None  # a CDN's own 403 page still says a block; a bare vendor name does not make one
    return who or "a firewall or CDN"


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


# Encoded text read (`readable`) is cut to this first: the cut of what is shown (2,000 characters) came after the
# decoding, and a 2xx body's or a stream event's message has no bound of its own (review34c: 1 MiB of `&timestamp;&`
# held the event loop 0.66 s per error). Encodings only shrink text: up to ~4 raw characters per decoded one, all kept.
DECODE_CHARS = 8192


def _shown(text: str, cut: Callable[[str], str], mask: Callable[[str], str], decoded: str | None = None) -> str:
    """`text` as the client reads it: `cut` (scrubbed, bounded), its internal addresses masked. The mask reads the text
    decoded (`decoded`, `readable(text)`: a proxy quoting the URL it could not reach, `http%3A%2F%2F10.1.2.3%3A8080`,
    review32c/33c; JSON escapes, HTML references, invisible characters, wire11). The decoded words are shown only when
    decoding revealed something to mask or scrub in them; else the words as written (review34c: every message was
    shown decoded: a documentation link's `?code=429&timestamp=1&param=model&section=2` became `×tamp=1¶m=model
    §ion=2`, `\\"` lost its backslash, a literal `%20` became a space)."""
    text = text[:DECODE_CHARS]
    if decoded is None:
        decoded = readable(text)
    if decoded == text:
        return mask(cut(text))
    out = mask(cut(decoded))
    if out != decoded[:len(out)]:
        return out  # (an address or a secret the decoded text shows)
    return mask(cut(text))


def masked(text: str, status: int | None = None) -> str:
    """A provider's error message (of a JSON error answer, or one in a 2xx body or a stream's event: `status` None) as
    the client hears it: scrubbed, bounded, its internal addresses and host names masked (a proxy's, LiteLLM's:
    "Cannot connect to host ollama:11434 ... ('172.18.0.3', 11434)"); a page wrapped in it is not repeated at all.
    (Before wire9 only an error status's message was masked: the same words in OpenRouter's 200 body or an
    Anthropic `event: error` reached the client whole.)"""
    decoded = readable(text[:DECODE_CHARS])
    if _PAGE.search(decoded[:1024].encode("utf-8", "replace")) is not None:
        log.warning("a provider's error message is a page: %s", scrub_cut(page_text(decoded.encode()), EXCERPT_CHARS))
        said = f" ({reason(status)})" if status is not None else ""
        return (f"an HTML page{said} in the error message instead of the provider's words: a proxy, "
                "load balancer or CDN in front of it answered (the gateway's log has an excerpt)")
    return _shown(text, upstream_text, json_mask, decoded)


def client_message(provider: str, status: int, raw: bytes, headers: Any) -> tuple[str, bool]:
    """(what the client hears of a non-JSON error answer, whether it is a block page). The page's excerpt goes to
    the operator's log."""
    content_type = str(headers.get("content-type", "")) if headers is not None else ""
    who = blocker(status, raw, headers)
    if who is not None or is_html(raw, content_type):
        excerpt = scrub_cut(page_text(raw[:16384]), EXCERPT_CHARS)
        log.warning("provider %r answered HTTP %d with a page that is not its API: %s", provider, status, excerpt)
        if who is not None:
            return (f"a block page of {who} in front of the provider, not its API ({reason(status)}): the request "
                    "was blocked there, by its content or the gateway's address, before it reached the provider "
                    "(the gateway's log has an excerpt)"), True
        hint = "; check the provider's base_url" if status in (404, 405) else ""
        return (f"an HTML page ({reason(status)}) instead of the provider's API: a proxy, load balancer or CDN in "
                f"front of it answered{hint} (the gateway's log has an excerpt)"), False
    text = _shown(raw[:4000].decode("utf-8", "replace"), scrub, text_mask)
    return _SPACE.sub(" ", text).strip()[:EXCERPT_CHARS], False
