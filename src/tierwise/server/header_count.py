"""The count of a request's header lines before the parser sees them (`server.limits.max_header_count`), for
`limits.GuardedHttpToolsProtocol`: within max_header_bytes, 16,000 empty fields cost 8x a plain request's CPU, a
Python call each in uvicorn's on_header and more after (wire8).

A header block that arrives in one read is counted there (limits.py, the usual request: one find, one count).
Here: a block over several reads (its lines kept across them; the last 3 bytes seen, should its blank line be
split), and a read holding many lines after a block: requests may be pipelined behind it, whose fields the
parser would take one Python call each, up to a read's 256 KiB, before their count at the block's end refused
them (review31e). Such a read is fed to the parser in slices of at most the count's lines, each counted as a read.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar


@lru_cache(maxsize=8)
def _slices(lines: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?:[^\n]*\n){1,%d}|[^\n]+" % lines)


class HeaderLineCount:
    """Mixed into the guarded protocol (which has `guard`, `transport`, `cut` and `_header_bytes`)."""

    _header_lines = 0  # lines of the header block so far, over several reads
    _tail = b""  # the last 3 bytes of those reads

    if TYPE_CHECKING:
        guard: ClassVar[Any]
        transport: Any
        url: bytes
        _header_bytes: int
        _refusal: bytes | None

        def cut(self, phase: str) -> None: ...

        def data_received(self, data: bytes) -> None: ...

    def _count_lines(self, data: bytes, end: int) -> bool:
        """A read of a header block over several reads (`end`: where `\\r\\n\\r\\n` is in it, or -1). True when the
        read was refused or fed here."""
        tail = self._tail
        if tail and (tail + data[:3]).find(b"\r\n\r\n") >= 0:
            end = 0  # the blank line began in the last read(s) (a `\r\n\r\n` further on is a body's or the next's)
        lines = self._header_lines + data.count(b"\n", 0, end if end >= 0 else len(data))
        if lines > self.guard.max_header_lines:
            self._refuse_count(data)
            return True
        if end < 0:  # (reads of under 3 bytes: the tail is kept from the ones before)
            self._header_lines, self._tail = lines, (tail + data[-3:])[-3:]
            return False
        self._header_lines, self._tail = 0, b""
        if data.count(b"\n", end) > self.guard.max_header_lines:
            self._in_slices(data)
            return True
        return False

    def _many_lines(self, data: bytes, end: int) -> None:
        """A read with more lines than the count whose header block ends in it (at `end`)."""
        if data.count(b"\n", 0, end) > self.guard.max_header_lines:
            self._refuse_count(data)
        else:
            self._in_slices(data)

    def _in_slices(self, data: bytes) -> None:
        self._header_bytes -= len(data)  # (counted again slice by slice)
        for m in _slices(self.guard.max_header_lines).finditer(data):
            self.data_received(m.group())
            if self.transport.is_closing() or self._refusal is not None:
                return

    def _refuse_count(self, data: bytes) -> None:
        if self._header_bytes == len(data):  # this read began the request: the refusal's schema goes by its path
            self.url = data.split(b" ", 2)[1] if data.count(b" ", 0, 1024) >= 2 else b""
        self.cut("header_count")
