"""Incremental server-sent-events parsing and formatting, shared by both codecs.

The parser takes bytes in arbitrary pieces and returns complete messages with their exact
raw bytes (for same-format pass-through) plus the event name and data.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(slots=True)
class SSEMessage:
    event: str | None
    data: bytes
    raw: bytes


MAX_EVENT_BYTES = 8 * 1024 * 1024


MAX_EVENT_LINES = 100_000


class EventTooLarge(ValueError):
    """An upstream sent more bytes than `max_event` without ending an event."""


class EventTooManyLines(EventTooLarge):
    """An upstream sent an event of more than MAX_EVENT_LINES lines."""


class SSEParser:
    """Bytes in, complete messages out. The upstream is untrusted: an event that never ends is cut
    off at `max_event` bytes, and the pending bytes are kept in a growing buffer that is searched
    only where new bytes arrived, so an event trickled a byte at a time costs linear time."""

    __slots__ = ("_buf", "_skip_lf", "_scan", "max_event")

    def __init__(self, max_event: int = MAX_EVENT_BYTES) -> None:
        self._buf = bytearray()
        self._skip_lf = False  # the last read ended in CR: a LF that opens the next one is its pair
        self._scan = 0  # where the search for the end of the pending event resumes
        self.max_event = max_event

    def feed(self, data: bytes) -> list[SSEMessage]:
        if self._skip_lf and data:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            # A CR ends a line at once (an event is never held back waiting for the next read);
            # when it was the first half of a CRLF, the LF is dropped as the next read comes.
            # Pending bytes were normalised when they came, so only the new ones need it.
            self._skip_lf = data[-1:] == b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._buf
        if pending:
            pending += data
            buf: bytes | bytearray = pending
            end = buf.find(b"\n\n", self._scan)
        else:
            buf = data
            end = buf.find(b"\n\n")
        out: list[SSEMessage] = []
        start = 0
        while end >= 0:
            block = bytes(buf[start:end])  # a copy either way (a slice of bytes is one too)
            raw = block + b"\n\n"
            start = end + 2
            end = buf.find(b"\n\n", start)
            # The shapes nearly every server sends, without the general line-by-line parse:
            # `data: …` (OpenAI) and `event: …` + `data: …` (Anthropic), one line each.
            nl = block.find(b"\n")
            if nl < 0:
                if block[:6] == b"data: ":
                    out.append(SSEMessage(None, block[6:], raw))
                    continue
            elif block[:7] == b"event: " and block[nl + 1 : nl + 7] == b"data: " and block.find(b"\n", nl + 1) < 0:
                out.append(SSEMessage(block[7:nl].decode("utf-8", "replace"), block[nl + 7 :], raw))
                continue
            msg = parse_block(block, raw)
            if msg is not None:
                out.append(msg)
        if buf is pending:
            del pending[:start]
        elif start < len(buf):
            pending += buf[start:]
        if len(pending) > self.max_event and not out:  # events that did end are passed on first
            raise EventTooLarge(f"a stream event grew past {self.max_event} bytes without ending")
        self._scan = max(0, len(pending) - 1)  # a "\n\n" may straddle the old end and the next read
        return out


def parse_block(block: bytes, raw: bytes) -> SSEMessage | None:
    # An event within max_event of 1.3 million empty `data:` lines became 1.3 million bytes objects: 8 MB held
    # 140 MB while it was read, per stream. (Only here, off the one- and two-line shapes nearly every server sends.)
    if block.count(b"\n") >= MAX_EVENT_LINES:
        raise EventTooManyLines(f"a stream event of more than {MAX_EVENT_LINES} lines")
    event: str | None = None
    data_lines: list[bytes] = []
    other = False  # a comment, `id:`, `retry:` or an unknown field
    for line in block.split(b"\n"):
        if not line:
            continue
        if line[0:1] == b":":
            other = True
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data_lines.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        else:
            other = True
    if not data_lines and event is None:
        return None
    if other:
        # Relayed as sent (same-format pass-through), an upstream's comments and `id:`/`retry:` lines reached the
        # client unread and unscrubbed: any text (an echoed key), a `retry` that sets a browser EventSource's
        # reconnection delay, ids it resends as Last-Event-ID (wire4). Only the event and its data go on.
        raw = (b"event: " + event.encode() + b"\n" if event is not None else b"") + b"".join(
            b"data: " + d + b"\n" for d in data_lines) + b"\n"
    return SSEMessage(event, b"\n".join(data_lines), raw)


def data_message(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def event_message(event: str, obj: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"
