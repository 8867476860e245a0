"""A chunked request body's reads are let go once parsed (wire12). header_bytes.py kept the read its latest chunk
header ended in (to measure a trailer section begun there) until the next chunk header: a client that sent one read
(up to 256 KiB) ending in a chunk header, or a chunk header and the start of its data, then went quiet held that read
per connection until `body_timeout`. Raw socket on loopback (the SDKs send Content-Length bodies); the gateway's
protocol objects looked at on its own loop once the read has been parsed (the request's body has begun)."""

from __future__ import annotations

import gc
import socket

from tests.harness import two_tier_config, wait_for

HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n")


def _protocols(g) -> list[dict[str, object]]:
    from tierwise.server.limits import GuardedHttpToolsProtocol

    def look() -> list[dict[str, object]]:
        return [dict(vars(o)) for o in gc.get_objects()
                if isinstance(o, GuardedHttpToolsProtocol) and vars(o).get("_phase") == "body"]
    return g.on_loop(look)


def _held(state: dict[str, object]) -> list[int]:
    """The byte strings a connection keeps that are larger than its request line (each read here is ~60 KB)."""
    return [(k, len(v)) for k, v in state.items() if isinstance(v, bytes | bytearray) and len(v) > 10_000]


def test_a_read_ending_in_a_chunk_header_or_its_first_data_is_not_held(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["local"]}))
    sends = {
        "data after the header": HEAD + b"%x\r\n" % (1 << 20) + b"x" * 60_000,
        "ends at the header": HEAD + b"%x\r\n%s\r\n%x\r\n" % (60_000, b"x" * 60_000, 1 << 20),
    }
    held: dict[str, list[list[tuple[str, int]]]] = {}
    for name, data in sends.items():
        with socket.create_connection(("127.0.0.1", g.port)) as s:
            s.sendall(data)
            assert wait_for(lambda: len(_protocols(g)) == 1), name  # the read parsed: the body has begun
            held[name] = [_held(p) for p in _protocols(g)]
    assert held == {"data after the header": [[]], "ends at the header": [[]]}
