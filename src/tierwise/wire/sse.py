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


class SSEParser:
    __slots__ = ("_buf", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False  # the last read ended in CR: a LF that opens the next one is its pair

    def feed(self, data: bytes) -> list[SSEMessage]:
        if self._skip_lf and data:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            # A CR ends a line at once (an event is never held back waiting for the next read);
            # when it was the first half of a CRLF, the LF is dropped as the next read comes.
            self._skip_lf = buf[-1:] == b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[SSEMessage] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            block = buf[start:end]
            raw = buf[start : end + 2]
            start = end + 2
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
        self._buf = buf[start:]
        return out


def parse_block(block: bytes, raw: bytes) -> SSEMessage | None:
    event: str | None = None
    data_lines: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0:1] == b":":
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data_lines.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data_lines and event is None:
        return None
    return SSEMessage(event, b"\n".join(data_lines), raw)


def data_message(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def event_message(event: str, obj: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"
