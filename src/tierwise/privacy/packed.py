"""gzip and zlib data inside an encoding (`H4sI...` is base64 of gzip's header, `eJ...` of zlib's): what `curl
--compressed` bodies, Kubernetes and Helm release secrets, JWT-like tokens and log shippers carry. Round 13
(privacy13): such a blob was a high-entropy SECRET at most (nothing under a `pii`-only policy) while any tool
inflates it at once. `unpack` inflates it, bounded: at most `RATIO` times its own size plus `SLACK` bytes (a
compression bomb yields its first bytes), and all the runs of one scanned text together at most the text's own size
plus `SLACK` (`budget`: 1 MB of small gzip bombs of digits, each inflated to its own bound, made 18 MB of digits to
scan, 48 s against 0.4 s; the encoded view's cost stays linear in the text); what lies past a bound is not read.
Review33d: and all the texts of one request together at most the request's characters plus `SLACK`
(`request_budget`): 300 fields of a 384-character bomb each inflated ~4.5 KB, 40x the CPU of plain fields. And
data that inflates past a bound is no longer cut silently (a bomb then a gzipped address: the address left unread):
`PackedCut`, which the detector turns into a refusal (fails closed, as an unreadable PDF does).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

RATIO = 8
SLACK = 4096
_GZIP = b"\x1f\x8b\x08"
_LEFT: ContextVar[list[int] | None] = ContextVar("tierwise_unpack_budget", default=None)
_REQUEST: ContextVar[list[int] | None] = ContextVar("tierwise_unpack_request_budget", default=None)


def request_budget(chars: int) -> None:
    """For the rest of the current request (its task, and the worker threads it scans in), `unpack` inflates at
    most `chars + SLACK` bytes in all its texts (`chars`: the request's characters of text)."""
    _REQUEST.set([chars + SLACK])


@contextmanager
def budget(text_len: int) -> Iterator[None]:
    """Within it, `unpack` inflates at most `text_len + SLACK` bytes in all (one scan of one text)."""
    token = _LEFT.set([text_len + SLACK])
    try:
        yield
    finally:
        _LEFT.reset(token)


def unpack(raw: bytes) -> bytes | None:
    """The inflated bytes of gzip or zlib data `raw` (up to the bound), or None: not such data, or broken before
    any byte came out."""
    if len(raw) < 10:
        return None
    if raw[:3] == _GZIP:
        wbits = 31
    elif raw[0] == 0x78 and (raw[0] << 8 | raw[1]) % 31 == 0:  # zlib's header: CMF 0x78 and its check bits
        wbits = 15
    else:
        return None
    pools = [p for p in (_LEFT.get(), _REQUEST.get()) if p is not None]
    limit = min([RATIO * len(raw) + SLACK, *(p[0] for p in pools)])
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(raw, max(limit, 1))
    except zlib.error:
        return None
    if len(out) >= limit and not d.eof:
        # review33d: what lies past a bound was not read, and a value gzipped after a bomb (in the same text, or
        # later in it) left with it; compressed data that cannot be read whole now fails the scan (closed)
        raise PackedCut("compressed data inflating past the scan's bound")
    for p in pools:
        p[0] -= len(out)
    return out or None


class PackedCut(Exception):
    """gzip or zlib data the scan cannot inflate whole within its bounds: the detector fails closed on it."""
