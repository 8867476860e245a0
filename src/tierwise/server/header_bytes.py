"""The size of each request's header block (`server.limits.max_header_bytes`) and of a chunked body's trailer
section, for `limits.GuardedHttpToolsProtocol`, however the client's bytes fall into reads.

Before wire10 a block was counted only on reads that did not end it and did not begin after another block: a block
that arrived whole in one read (up to a read, 256 KiB, under a 4 KiB limit), one pipelined whole between two
requests in a read, and one pipelined behind a request and ended in the next read (~512 KiB) were parsed and served.
Now the parser's position in the read is followed through its callbacks (a block ends at its first blank line, a
`Content-Length` body is the bytes `on_body` saw, a chunked one ends with its last chunk's trailer section), so each
block's bytes are known when its headers complete (over the limit: refused there, 431, after the requests before
it, as the field count), and an unfinished block's bytes at the end of each read (over the limit: 431 at once).
Cost: a `find` and a few attribute updates per request (~4,000 instructions of the protocol layer's ~290,000:
bench/protocol_instructions.py, session 34), a `find` per chunk of a chunked body. The read is let go once parsed
(before session 34, perf34, each connection held its last read, up to 256 KiB, until its next one).

The parser skips empty lines before a request line (RFC 9112 2.2): a block's end is looked for after them. Before
perf34 it was looked for from the first of them, found at once, and `\r\n\r\n` then a 100 KB block passed a 4 KiB
limit. The empty lines count as the block's bytes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

_EMPTY_LINES = re.compile(rb"[\r\n]*")


class TooManyFields(Exception):
    """More header (or trailer) fields than `max_header_count`, or a block past `max_header_bytes`."""


class HeaderBytes:
    """Mixed into the guarded protocol (which has `guard` and uvicorn's `headers` and callbacks)."""

    _data = b""  # the read being parsed (b"" once parsed)
    _pos = 0  # where the parser is in it, as its callbacks tell: a block's end, a body's end, a message's end
    _start = 0  # where the message being read began in this read (0: in an earlier one)
    _before = 0  # the unfinished block's bytes in earlier reads
    _last3 = b""  # the last bytes of those reads (a blank line may be split between two)
    _too_big = False  # the block refused at its headers' end was past max_header_bytes (not the field count)

    # A chunked body's last chunk is followed by trailer fields, which uvicorn appends to the request's
    # headers (httptools grows one long value by concatenation first), with no bound: 300 MB of trailers after
    # a one-line body, no key needed, held 300 MB. A chunk header that no body byte has followed yet is either
    # a chunk whose data is still to come or the last chunk: reads that bring no body after it are trailers.
    # (review33c) A trailer section that came in its last chunk's read was never measured (100 KB under a 4 KiB
    # limit, served): now its bytes run from the last chunk's size line to its blank line, across reads. And its
    # fields went into the scope's header list: a trailer `authorization` authenticated a request whose header block
    # had no key or the wrong one (RFC 9110 6.5.1: not merged). A chunked body's fields go to a list of their own.
    _after_chunk_header = False
    _trailer_bytes = 0  # the unfinished trailer section's bytes in earlier reads
    # The read the latest chunk header ended in, and where, while that read is parsed (then None: before wire12 the
    # read was held until the next chunk header, up to 256 KiB per connection whose client went quiet mid-chunk)
    _chunk_in: bytes | None = None
    _chunk_at = 0
    _trailer_room = 0  # how many trailer fields max_header_count leaves after the header block's
    _trailer_cut: str | None = None  # the trailer section was refused: why (for send_400_response)

    if TYPE_CHECKING:
        guard: ClassVar[Any]
        headers: list[tuple[bytes, bytes]]
        scope: Any

    def _block_fits(self) -> bool:
        """At a block's end (the parser's `on_headers_complete`): whether its bytes are within the limit."""
        start = self._start
        if self._before:
            return self._straddled_fits()
        data = self._data
        # (empty lines before the request line: its blank line comes after them)
        at = _EMPTY_LINES.match(data, start).end() if data[start] in b"\r\n" else start  # type: ignore[union-attr]
        end = self._pos = data.find(b"\r\n\r\n", at) + 4
        if end - start > self.guard.max_header_bytes:
            self._too_big = True
            return False
        return True

    def _straddled_fits(self) -> bool:
        """`_block_fits` of a block begun in an earlier read: its blank line may have begun there too."""
        data, start, before, last = self._data, self._start, self._before, self._last3
        j = (last + data[:3]).find(b"\r\n\r\n")
        # (not found: it straddled reads, at most 3 bytes here)
        end = j + 4 - len(last) if 0 <= j < len(last) else data.find(b"\r\n\r\n", start) + 4
        self._pos, self._before = end, 0
        if before + end - start > self.guard.max_header_bytes:
            self._too_big = True
            return False
        return True

    def _block_unfinished(self, data: bytes) -> int:
        """At the end of a read that leaves a block unfinished: its bytes so far."""
        before = self._before
        n = self._before = before + len(data) - self._start
        self._last3 = (self._last3 + data[-3:])[-3:] if before else data[-3:]
        return n

    def on_body(self, body: bytes) -> None:
        self._after_chunk_header, self._chunk_in = False, None  # (wire12: not held while the chunk's data comes)
        self._pos += len(body)
        super().on_body(body)  # type: ignore[misc]

    def on_chunk_header(self) -> None:  # (called by httptools for chunked bodies only)
        self._after_chunk_header = True
        data = self._chunk_in = self._data
        self._pos = self._chunk_at = data.find(b"\n", self._pos) + 1  # past the chunk's size line
        if self.headers is self.scope["headers"]:  # (the first chunk: later fields are trailers, the app's never)
            self._trailer_room = self.guard.max_header_count - len(self.headers)
            self.headers = []

    def _trailer_read(self, data: bytes) -> int:
        """At the end of a read that leaves a trailer section unfinished: its bytes so far."""
        n = self._trailer_bytes = self._trailer_bytes + len(data) - (self._chunk_at if self._chunk_in is data else 0)
        self._chunk_in = None  # (wire12: later reads are not this one; it is not held until the next chunk header)
        return n

    def on_chunk_complete(self) -> None:
        data, pos = self._data, self._pos
        if not self._after_chunk_header:
            self._pos = pos + 2  # (the CRLF after a chunk's data)
            self._trailer_bytes = 0
            return
        # the last chunk: its trailer section ends the message (a blank line split between reads: ≤ 2 bytes more)
        end = self._pos = pos + 2 if data.startswith(b"\r\n", pos) else data.find(b"\r\n\r\n", pos) + 4
        size = self._trailer_bytes + end - (self._chunk_at if self._chunk_in is data else 0)
        self._after_chunk_header, self._trailer_bytes, self._chunk_in = False, 0, None
        if size > self.guard.max_header_bytes:
            self._trailer_cut = "trailer_size"
            raise TooManyFields
        if len(self.headers) > self._trailer_room:
            self._trailer_cut = "trailer_count"
            raise TooManyFields
