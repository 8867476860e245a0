"""The number of a request's header fields (`server.limits.max_header_count`), its chunked body's trailer fields
included. Only their bytes were bounded (`max_header_bytes`, 64 KiB): 16,000 empty fields (`a:`) fit, each one a
Python call in the parser's callback and a pair in every later pass over the headers, 2.7x a plain request's CPU,
no key needed (session 30). Past the count the gateway stops parsing and answers 431 in the schema of the API
the path belongs to."""

from __future__ import annotations

import json
import socket

import httpx2 as httpx

from tests.harness import exchange, two_tier_config


def fields(n: int) -> bytes:
    return b"a:\r\n" * n


def test_more_header_fields_than_the_count_are_refused_with_431_in_the_paths_schema(gateway):
    g = gateway({"server": {"limits": {"max_header_count": 64}}})
    for path, anthropic in ((b"/v1/messages", True), (b"/v1/chat/completions", False)):
        for n in (70, 16_000):  # 16,000 empty fields: 64 KB, under max_header_bytes
            got = exchange(g.port, b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n" % (path, fields(n)))
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 431"), got[:300]
            assert b"connection: close" in head
            err = json.loads(body)
            if anthropic:
                assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error", err
            message = err["error"]["message"]
            assert "server.limits.max_header_count" in message, err
    # at the count, and with ordinary headers, requests are served as before
    assert exchange(g.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n%s\r\n"
                    % fields(62)).startswith(b"HTTP/1.1 200")
    assert httpx.get(g.url + "/health", headers={f"x-h{i}": "y" for i in range(50)}, timeout=5).status_code == 200


def test_the_next_request_on_a_connection_gets_its_own_count(gateway):
    g = gateway({"server": {"limits": {"max_header_count": 64}}})
    ok = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n" % fields(50)
    got = exchange(g.port, ok + ok + b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
    assert got.count(b"HTTP/1.1 200") == 3, got[:500]
    with socket.create_connection(("127.0.0.1", g.port)) as s:  # a keep-alive connection's next request
        s.settimeout(10)
        s.sendall(ok)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n" % fields(100))
        assert s.recv(65536).startswith(b"HTTP/1.1 431")


def test_trailer_fields_count_with_the_headers(gateway, openai_up, anthropic_up):
    g = gateway({**two_tier_config(openai_up.url, anthropic_up.url),
                 "server": {"limits": {"max_header_count": 64}}})
    body = json.dumps({"model": "local", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}).encode()
    head = (b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"anthropic-version: 2023-06-01\r\ntransfer-encoding: chunked\r\n\r\n")
    chunked = b"%x\r\n%s\r\n0\r\n" % (len(body), body)
    got = exchange(g.port, head + chunked + b"x-t: 1\r\n" * 100 + b"\r\n")
    assert got.startswith(b"HTTP/1.1 431"), got[:300]
    assert json.loads(got.partition(b"\r\n\r\n")[2])["type"] == "error"
    assert openai_up.requests == []  # refused before the app ran: no upstream call
    got = exchange(g.port, head.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1) + chunked
                   + b"x-t: 1\r\n" * 10 + b"\r\n")
    assert got.startswith(b"HTTP/1.1 200"), got[:300]


def test_fields_are_counted_across_reads_and_a_split_blank_line_is_no_field(gateway, openai_up, anthropic_up):
    """The count runs on each read before the parser: a header block sent in pieces is counted whole, and a body
    of many lines whose header block's blank line was split between two reads is not read as fields."""
    import time

    g = gateway({**two_tier_config(openai_up.url, anthropic_up.url), "server": {"limits": {"max_header_count": 64}}})
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        s.settimeout(10)
        s.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        for _ in range(4):  # 4 reads of 30 fields: none past the count alone
            time.sleep(0.05)
            s.sendall(fields(30))
        assert s.recv(65536).startswith(b"HTTP/1.1 431")
    body = json.dumps({"model": "local", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]
                       * 200}, indent=1).encode()  # ~800 lines
    assert body.count(b"\n") > 500
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r" % len(body))
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        s.settimeout(10)
        s.sendall(head)
        time.sleep(0.1)
        s.sendall(b"\n" + body)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")


def test_requests_pipelined_in_one_read_are_counted_too(gateway):
    g = gateway({"server": {"limits": {"max_header_count": 64}}})
    ok = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    got = exchange(g.port, ok + b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n" % fields(1000) + ok)
    assert got.count(b"HTTP/1.1 200") <= 1 and got.count(b"HTTP/1.1 431") <= 1, got[:500]
    assert httpx.get(g.url + "/health", timeout=5).status_code == 200


def test_a_request_pipelined_behind_another_in_one_read_is_counted_before_the_parser(gateway, monkeypatch):
    """review31e: only the first header block of a read was counted before the parser; a request pipelined behind
    a small one in the same read had each of its fields parsed (a Python call each in uvicorn's on_header, up to a
    read's 256 KiB: 16,000 fields here) before the count at its header block's end refused it."""

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    calls = [0]
    on_header = HttpToolsProtocol.on_header

    def counted(self, name: bytes, value: bytes) -> None:
        calls[0] += 1
        on_header(self, name, value)

    monkeypatch.setattr(HttpToolsProtocol, "on_header", counted)
    g = gateway({"server": {"limits": {"max_header_count": 64}}})
    got = exchange(g.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                   + fields(16_000), then=(b"\r\n",), pause=0.2)
    assert calls[0] <= 4 * 64, calls[0]  # before: 16,002
    # (refused while the first still runs, the connection is dropped, as for a block over several reads)
    assert b" 500 " not in got and got.count(b"HTTP/1.1 ") <= 2, got[:300]
    assert httpx.get(g.url + "/health", timeout=5).status_code == 200


def test_a_split_blank_line_then_a_body_of_many_lines_and_a_pipelined_request_is_no_431(gateway):
    """review31e: with the header block's blank line split between two reads, the next read's first `\\r\\n\\r\\n`
    was taken for the block's end when it held one further on (a request pipelined behind the body): every line of
    the body before it was counted as a header field, and an honest client got 431."""

    g = gateway({"server": {"limits": {"max_header_count": 64}}})
    body = b"{\n" + b' "a": 1,\n' * 300 + b' "b": 2\n}'
    head = (b"POST /health HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r" % len(body))
    got = exchange(g.port, head, then=(b"\n" + body + b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",))
    assert b"431" not in got.split(b"\r\n", 1)[0], got[:300]
    assert got.count(b"HTTP/1.1 ") == 2, got[:600]
    # in one read (fed to the parser in slices of at most the count's lines): the same two answers
    again = exchange(g.port, head + b"\n" + body + b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
    assert again.count(b"HTTP/1.1 ") == 2 and b" 431 " not in again, again[:600]


def test_a_blank_line_sent_a_byte_at_a_time_leaves_no_count_for_the_next_request(gateway):
    """review31e: the last read's end was kept as its last 3 bytes, so a blank line arriving over reads of one byte
    was never seen: the block's lines stayed counted and the connection's next request was counted on top of them
    (a false 431 for a request well under the count)."""
    import time

    g = gateway({"server": {"limits": {"max_header_count": 64}}})
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        s.settimeout(10)
        s.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n" + fields(50))
        for b in (b"\r", b"\n"):
            time.sleep(0.05)
            s.sendall(b)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n" % fields(50))
        assert s.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_refused_block_pipelined_behind_running_requests_is_answered_after_them(gateway, openai_up, anthropic_up):
    """wire9: a request past the count (or past max_header_bytes) pipelined behind one the gateway is still answering
    dropped the connection, and with it the answers of the requests already accepted. Now those are answered, in
    order, then the 431, and the connection closes."""
    from tests.doubles import Delay, Reply

    g = gateway({**two_tier_config(openai_up.url, anthropic_up.url), "server": {"limits": {"max_header_count": 64}}})
    body = json.dumps({"model": "local", "messages": [{"role": "user", "content": "hi"}]}).encode()
    chat = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))
    health = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    over_count = (b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n" % fields(1000), ())
    # (max_header_bytes counts the reads of a block that spans them: 70 KB in a read of its own, 0.1 s apart)
    over_size = (b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ", (b"a" * 70_000, b"\r\n\r\n"))
    # behind the running request alone, and behind one waiting its turn too (the size only alone: with one queued,
    # reading pauses and the block's reads come as one, which the size bound lets through as its "one read")
    for (refused, then), queued in ((over_count, b""), (over_count, health), (over_size, b"")):
        openai_up.script(Delay(0.5, then=Reply(text="first answer")))
        got = exchange(g.port, chat + queued + refused, then=then)
        answers = got.split(b"HTTP/1.1 ")[1:]
        assert len(answers) == (3 if queued else 2), got[:600]
        assert answers[0].startswith(b"200") and b"first answer" in answers[0], got[:600]
        if queued:
            assert answers[1].startswith(b"200"), got[:600]
        head, _, err = answers[-1].partition(b"\r\n\r\n")
        assert head.startswith(b"431") and b"connection: close" in head, got[:600]
        assert "server.limits.max_header_" in json.loads(err)["error"]["message"]
