"""Per-request cost of the browser and client reach checks (issue 15, item 7).

Times, in-process, what a request pays: the origin guard's header pass (`OriginGuard.screen`),
the forwarding allow-list on a parsed body and its headers (`ForwardingGuard.apply`) and the
key scope check (`KeyScope.admit`), for a plain SDK request and for a Claude Code-sized one (the
beta header Claude Code sends, 20 tools, two extra body fields).

    python bench/reach_cost.py
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from tierwise.config import ServerConfig
from tierwise.server.forwarding_policy import ForwardingGuard
from tierwise.server.key_scopes import KeyScope
from tierwise.server.origin_guard import OriginGuard
from tierwise.wire import anthropic_messages, openai_chat

N = 200_000

CLAUDE_BETAS = ("claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,"
                "thinking-token-count-2026-05-13,context-management-2025-06-27,prompt-caching-scope-2026-01-05,"
                "mid-conversation-system-2026-04-07,effort-2025-11-24")
RAW_HEADERS = [(b"host", b"127.0.0.1:4000"), (b"accept", b"application/json"), (b"anthropic-version", b"2023-06-01"),
               (b"anthropic-beta", CLAUDE_BETAS.encode()), (b"content-type", b"application/json"),
               (b"user-agent", b"claude-cli/2.0 (external, cli)"), (b"x-api-key", b"sk-ant-test"),
               (b"x-stainless-lang", b"js"), (b"content-length", b"123456")]
BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True, "system": [{"type": "text", "text": "x"}],
    "messages": [{"role": "user", "content": "hi"}], "metadata": {"user_id": "u"},
    "thinking": {"type": "enabled", "budget_tokens": 4000}, "context_management": {"edits": []},
    "output_config": {"effort": "high"},
    "tools": [{"name": f"Tool{i}", "description": "d", "input_schema": {"type": "object"}} for i in range(20)],
}
SDK_BODY: dict[str, Any] = {"model": "main", "messages": [{"role": "user", "content": "hi"}]}


def per_call_us(fn: Any, n: int = N) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    server = ServerConfig()

    async def no_error(*_: Any) -> None:
        raise AssertionError("refused")

    async def send(_: Any) -> None:
        return None

    guard = OriginGuard(server, no_error)
    fw = ForwardingGuard(server.forwarding, {"anthropic": anthropic_messages.KNOWN_FIELDS,
                                             "openai": openai_chat.KNOWN_FIELDS})
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": RAW_HEADERS}
    loop = asyncio.new_event_loop()

    def screen() -> None:
        coro = guard.screen(scope, send, "POST")
        try:
            coro.send(None)
        except StopIteration:
            pass

    key = KeyScope(frozenset({"main", "cheap"}), False)
    deployments = {"frontier": 1, "local": 2}
    bodies = [copy.deepcopy(BODY) for _ in range(1000)]  # apply() drops fields in place: fresh copies
    headers = {"anthropic-beta": CLAUDE_BETAS, "anthropic-version": "2023-06-01"}
    i = 0

    def apply_claude() -> None:
        nonlocal i
        fw.apply(bodies[i % 1000], dict(headers), "anthropic")
        i += 1

    def apply_sdk() -> None:
        fw.apply(SDK_BODY, {}, "openai")

    def header_dict() -> None:  # what every request already pays (asgi_scope.request_headers), for scale
        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in RAW_HEADERS}

    rows = [
        ("for scale: the header dict every request builds", per_call_us(header_dict)),
        ("origin guard, Claude Code headers (POST)", per_call_us(screen)),
        ("forwarding allow-list, Claude Code body + betas", per_call_us(apply_claude)),
        ("forwarding allow-list, plain SDK body", per_call_us(apply_sdk)),
        ("key scope check", per_call_us(lambda: key.admit("main", "main", deployments))),
    ]
    loop.close()
    for name, us in rows:
        print(f"{name:52s} {us:6.2f} us")
    print(f"{'total for a Claude Code request':52s} {rows[1][1] + rows[2][1] + rows[4][1]:6.2f} us")


if __name__ == "__main__":
    main()
