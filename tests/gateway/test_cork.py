"""HeaderCork joins a response's header block with the next write and delays nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from tierwise.server.cork import HeaderCork

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "sockname" else default


async def test_header_block_leaves_with_the_body_in_one_write() -> None:
    t = RecordingTransport()
    cork = HeaderCork(t, asyncio.get_running_loop())  # type: ignore[arg-type]
    cork.write(HEAD)
    assert t.writes == []
    assert cork.get_write_buffer_size() == len(HEAD)
    cork.write(b"{}")
    assert t.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert t.writes == [HEAD + b"{}"]


async def test_a_lone_header_block_is_sent_at_the_end_of_the_loop_turn() -> None:
    t = RecordingTransport()
    cork = HeaderCork(t, asyncio.get_running_loop())  # type: ignore[arg-type]
    cork.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert t.writes == []
    await asyncio.sleep(0)
    assert t.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


async def test_body_writes_are_never_delayed_and_close_flushes_first() -> None:
    t = RecordingTransport()
    cork = HeaderCork(t, asyncio.get_running_loop())  # type: ignore[arg-type]
    cork.write(b"5\r\nhello\r\n")
    assert t.writes == [b"5\r\nhello\r\n"]
    cork.write(b"")
    assert t.writes == [b"5\r\nhello\r\n"]
    cork.write(HEAD)
    cork.close()
    assert t.writes == [b"5\r\nhello\r\n", HEAD] and t.closed
    assert cork.get_extra_info("sockname") == ("127.0.0.1", 1)  # the rest is the real transport's
