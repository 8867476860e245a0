"""The fault suite: every way an upstream can misbehave, through a real gateway, with both SDKs.

The route `main` tries `local` (the OpenAI double) and falls back to `frontier` (the Anthropic
double). For each fault and each client API, streamed and not, the client must get either a
complete valid answer (from the fallback, or after a retry) or a well-formed error in its own
API's schema; afterwards the gateway must hold no extra task and no upstream connection, the
double must have no request still being answered, and the ledger must hold exactly one
complete record of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from tests.doubles import Corrupt, CutStream, Delay, Fail, Hold, Reply, SlowStream, Trickle
from tests.gateway.conftest import ant, oai
from tests.harness import GatewayServer, free_port, two_tier_config

LOCAL_TEXT = "local answer in five words"
FRONTIER_TEXT = "frontier answer from the fallback"
LONG_TEXT = "one two three four five six seven eight nine ten"


@dataclass(frozen=True)
class Fault:
    name: str
    item: Any  # script item for the local double, or "refused" / "blackhole" for its address
    outcome: str  # "frontier" (fallback answered), "local" (a retry answered), "error" (clean error)


FAULTS = [
    Fault("5xx", Fail(500, "boom"), "frontier"),
    # A rate limit moves on, not retried on the same target (its client's SDK retries the gateway's 429: review26b)
    Fault("429-retry-after", Fail(429, "slow down", retry_after=0.2), "frontier"),
    Fault("connection-refused", "refused", "frontier"),
    Fault("connect-timeout", "blackhole", "frontier"),
    Fault("read-timeout", Delay(3), "frontier"),
    Fault("slow-loris", Trickle(0.05), "frontier"),
    Fault("malformed-json", Corrupt("json", at_chunk=0), "frontier"),
    Fault("invalid-utf8", Corrupt("utf8", at_chunk=0), "frontier"),
    Fault("cut-before-first-byte", CutStream(0), "frontier"),
]
# Faults that only exist once a stream has started: the client already has bytes, so the
# answer cannot silently move to another model; it must end with one clean error event.
# Each is held back until the client has read the stream's first event (`Hold`): paced 50 ms apart
# instead, the good events and the bad one reached a busy machine's gateway in one read, nothing had
# gone to the client yet, and the route rightly moved on to the frontier (the test saw an answer).
MID_STREAM_FAULTS: dict[str, Callable[[threading.Event], Any]] = {
    "truncated-sse": lambda release: Hold(4, release, CutStream(4, then=Reply(text=LONG_TEXT))),
    "malformed-json-mid-stream": lambda release: Hold(3, release, Corrupt("json", at_chunk=3,
                                                                          then=Reply(text=LONG_TEXT))),
    "invalid-utf8-mid-stream": lambda release: Hold(3, release, Corrupt("utf8", at_chunk=3,
                                                                        then=Reply(text=LONG_TEXT))),
}


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port whose listen queue is full, so a new connection is never accepted (connect timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue; later SYNs are dropped
            c = socket.socket()
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect(("127.0.0.1", port))
            fillers.append(c)
        yield port
    finally:
        for c in fillers:
            c.close()
        server.close()


@pytest.fixture
def faulty(gateway, openai_up, anthropic_up) -> Iterator[Callable[[Fault], GatewayServer]]:
    with blackhole() as dead_port:

        def make(fault: Fault, timeouts: dict[str, float] | None = None) -> GatewayServer:
            cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
                "main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 1},
            })
            cfg["breaker"] = {"failures": 100, "cooldown": 0.1}
            cfg["providers"]["localsrv"]["timeouts"] = timeouts or {"connect": 0.5, "read": 1, "total": 2}
            if fault.item == "refused":
                cfg["providers"]["localsrv"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
            elif fault.item == "blackhole":
                cfg["providers"]["localsrv"]["base_url"] = f"http://127.0.0.1:{dead_port}/v1"
            elif fault.outcome == "local":  # a passing fault: the retry gets the normal answer
                openai_up.script(fault.item)
                openai_up.default = Reply(text=LOCAL_TEXT)
            else:  # a lasting fault: retries of `local` fail too
                openai_up.default = fault.item
            anthropic_up.default = Reply(text=FRONTIER_TEXT)
            return gateway(cfg)

        yield make


def gateway_state(g: GatewayServer) -> tuple[int, int]:
    """(tasks alive on the gateway's loop, upstream connections checked out of its pool)."""

    async def probe() -> tuple[int, int]:
        acquired = sum(len(s.connector._acquired) for s in g.gateway._sessions.values() if s.connector)
        return len(asyncio.all_tasks()), acquired

    assert g.loop is not None
    return asyncio.run_coroutine_threadsafe(probe(), g.loop).result(5)


def settle(g: GatewayServer, doubles: list[Any], baseline_tasks: int) -> None:
    """Nothing leaked: tasks back to the idle count, no connection checked out, doubles idle."""
    deadline = time.monotonic() + 10
    while True:
        tasks, conns = gateway_state(g)
        idle = tasks <= baseline_tasks and conns == 0 and all(d.active == 0 for d in doubles)
        if idle or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert tasks <= baseline_tasks, f"{tasks - baseline_tasks} task(s) leaked"
    assert conns == 0, f"{conns} upstream connection(s) still checked out"
    assert all(d.active == 0 for d in doubles), "an upstream request is still being answered"


def complete_record(g: GatewayServer, rid: str, status: int | None = None) -> Any:
    g.flush()
    assert g.ledger.count() == 1, "exactly one ledger record per request"
    rec = g.ledger.get(rid)
    assert rec is not None and rec.route == "main" and rec.latency_ms > 0
    calls = [s for s in rec.steps if s["kind"] == "call"]
    assert calls and all(c.get("ok") is not None for c in calls), rec.steps  # every attempt concluded
    if status is not None:
        assert rec.status == status
    return rec


def _told(events: Any, on_first: Callable[[], None] | None) -> Iterator[Any]:
    """The stream's events, calling `on_first` once the first has reached the client."""
    for i, ev in enumerate(events):
        if i == 0 and on_first is not None:
            on_first()
        yield ev


def ask(g: GatewayServer, api: str, stream: bool,
        on_first: Callable[[], None] | None = None) -> tuple[str, str | None, Any]:
    """(request id, answer text or None, the error the SDK raised or None); `on_first`: called when a stream's
    first event has reached the client."""
    msgs = [{"role": "user", "content": "q"}]
    if api == "openai":
        with oai(g, timeout=30) as client:
            raw = client.chat.completions.with_raw_response.create(model="main", messages=msgs, stream=stream)
            rid = raw.headers["x-tierwise-request-id"]
            try:
                if not stream:
                    return rid, raw.parse().choices[0].message.content, None
                return rid, "".join(c.choices[0].delta.content or "" for c in _told(raw.parse(), on_first)
                                    if c.choices), None
            except openai.APIError as e:
                return rid, None, e
    with ant(g, timeout=30) as client:
        araw = client.messages.with_raw_response.create(model="main", max_tokens=50, messages=msgs, stream=stream)
        rid = araw.headers["x-tierwise-request-id"]
        try:
            if not stream:
                return rid, "".join(b.text for b in araw.parse().content if b.type == "text"), None
            text = "".join(ev.delta.text for ev in _told(araw.parse(), on_first)
                           if ev.type == "content_block_delta" and ev.delta.type == "text_delta")
            return rid, text, None
        except anthropic.APIError as e:
            return rid, None, e


def assert_well_formed_error(api: str, err: Any) -> None:
    assert err is not None, "the stream should have ended with an error event"
    body = err.body
    if api == "openai":
        assert isinstance(body, dict) and body.get("message") and body.get("type"), body
    else:
        assert isinstance(body, dict) and body.get("type") == "error", body
        assert body["error"]["type"] and body["error"]["message"], body
    assert "Traceback" not in str(body)


def run_fault(faulty, openai_up, anthropic_up, fault: Fault, api: str, stream: bool,
              on_first: Callable[[], None] | None = None, timeouts: dict[str, float] | None = None) -> None:
    g = faulty(fault, timeouts)
    baseline = gateway_state(g)[0]
    rid, text, err = ask(g, api, stream, on_first)
    if fault.outcome == "error":
        assert text is None
        assert_well_formed_error(api, err)
        rec = complete_record(g, rid)
        assert rec.status >= 500 and rec.error_message
    else:
        assert err is None, err
        assert text == (FRONTIER_TEXT if fault.outcome == "frontier" else LOCAL_TEXT)
        rec = complete_record(g, rid, status=200)
        assert rec.decision == fault.outcome
    settle(g, [openai_up, anthropic_up], baseline)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_fault_before_the_answer_starts(faulty, openai_up, anthropic_up, fault, api, stream):
    run_fault(faulty, openai_up, anthropic_up, fault, api, stream)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", list(MID_STREAM_FAULTS))
def test_fault_mid_stream(faulty, openai_up, anthropic_up, fault, api):
    release = threading.Event()
    # No timeout of a second here: while the double holds the fault, a stalled gateway (2 s of a busy machine's
    # scheduling) would time `local` out before its first event went out, and the route would move on.
    run_fault(faulty, openai_up, anthropic_up, Fault(fault, MID_STREAM_FAULTS[fault](release), "error"), api, True,
              on_first=release.set, timeouts={"connect": 5, "read": 60, "total": 120})


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_client_disconnect_mid_stream_cancels_the_upstream(faulty, openai_up, anthropic_up, api):
    long_text = " ".join(f"w{i}" for i in range(200))
    g = faulty(Fault("client-disconnect", SlowStream(0.1, then=Reply(text=long_text)), "local"))
    baseline = gateway_state(g)[0]
    msgs = [{"role": "user", "content": "q"}]
    if api == "openai":
        with oai(g, timeout=30) as client:
            with client.chat.completions.with_streaming_response.create(
                    model="main", messages=msgs, stream=True) as resp:
                rid = resp.headers["x-tierwise-request-id"]
                next(resp.iter_lines())
    else:
        with ant(g, timeout=30) as client:
            with client.messages.with_streaming_response.create(
                    model="main", max_tokens=500, messages=msgs, stream=True) as resp:
                rid = resp.headers["x-tierwise-request-id"]
                next(resp.iter_lines())
    # Leaving the block closed the connection: the gateway must stop the upstream request.
    assert openai_up.wait_until(lambda: openai_up.disconnects >= 1, timeout=5), "upstream was not cancelled"
    assert len(openai_up.requests) == 1 and anthropic_up.requests == []
    settle(g, [openai_up, anthropic_up], baseline)
    rec = complete_record(g, rid, status=499)
    call = next(s for s in rec.steps if s["kind"] == "call")
    assert call["ok"] is False and call["reason"] == "cancelled"


@pytest.mark.parametrize("slow", [False, True], ids=["whole-at-once", "first-chunk-then-more"])
def test_a_gateway_bug_rendering_the_first_chunk_ends_the_stream_cleanly(
        faulty, openai_up, anthropic_up, monkeypatch, slow):
    """A failure in the gateway's own code after the 200 went out: the client gets one error event
    in its schema (no stack trace), the upstream is closed, nothing leaks, one ledger row (500)."""
    from tierwise.wire import anthropic_messages

    def broken(self, ev):
        raise RuntimeError("encoder bug")

    item = SlowStream(0.05, then=Reply(text=LONG_TEXT)) if slow else Reply(text=LOCAL_TEXT)
    g = faulty(Fault("render-bug", item, "error"))
    baseline = gateway_state(g)[0]
    monkeypatch.setattr(anthropic_messages.StreamEncoder, "encode", broken)
    rid, text, err = ask(g, "anthropic", True)  # Anthropic client, OpenAI upstream: every event is re-encoded
    assert text is None
    assert_well_formed_error("anthropic", err)
    assert "encoder bug" not in str(err.body)
    rec = complete_record(g, rid, status=500)
    assert rec.error_message
    settle(g, [openai_up, anthropic_up], baseline)
