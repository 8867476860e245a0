"""Session 23's leftovers, measured on a tree (`--src`, default this checkout's): the figures of bench/RESULTS.md's
"Session 23's leftovers" section.

- strict:   an OpenAI client's strict tool (`openai.pydantic_function_tool`), streamed with `chat.completions.stream`
            and whole with `.parse`, on a route [local, frontier] whose local server writes arguments the SDK cannot
            parse (5 shapes): what the caller's code got.
- hung:     the frontier takes requests and never answers (read timeout 0.3 s), `breaker.failures: 5`, cooldown
            30 s; 10 requests one at a time on [frontier, local]: frontier calls and what the budget counted.
- journal:  a ledger whose writer is held, `max_queued` 1,000, 4 MiB journal files; 60,000 records of ~1 KB
            (stored text): the journal's peak disk use, and the records dropped. `--journal-max` bounds it (a
            tree without `ledger.journal.max_bytes` ignores it).

    PYTHONPATH=src .venv/bin/python bench/leftovers24.py [--src OTHER/src] [--only strict,hung,journal]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--only", default="")
    ap.add_argument("--journal-max", type=int, default=0, help="ledger.journal.max_bytes (0: the tree's default)")
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    sys.path.insert(1, str(ROOT))
    only = set(filter(None, a.only.split(",")))
    for name, fn in (("strict", strict), ("hung", hung), ("journal", lambda: journal(a.journal_max))):
        if not only or name in only:
            print(f"{name}: {fn()}", flush=True)


def _gateway(cfg: dict[str, Any]) -> Any:
    from tests.harness import GatewayServer, make_config

    return GatewayServer(make_config(cfg, Path(tempfile.mkdtemp()))).start()


def _doubles() -> tuple[Any, Any]:
    from tests.doubles import AnthropicDouble, OpenAIDouble

    o, an = OpenAIDouble(), AnthropicDouble()
    o.start()
    an.start()
    return o, an


def strict() -> str:
    import openai
    import pydantic

    from tests.doubles import Raw, Reply, ToolCall
    from tests.gateway.conftest import oai
    from tests.harness import two_tier_config
    from tests.security.test_hostile_model_output import STRICT, tool_stream

    class Edit(pydantic.BaseModel):
        path: str

    o, an = _doubles()
    g = _gateway(two_tier_config(o.url, an.url, routes={"main": {"policy": "fallback", "targets": ["local", "frontier"],
                                                                 "retries": 0}}))
    kw = {"model": "main", "messages": [{"role": "user", "content": "edit a.py"}],
          "tools": [openai.pydantic_function_tool(Edit)]}
    out = []
    for case, pieces in sorted(STRICT.items()):
        body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{
            "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c", "type": "function", "function": {"name": "Edit", "arguments": "".join(pieces)}}]}}]}
        o.script(Raw(body=tool_stream(*pieces).replace('"edit"', '"Edit"'), content_type="text/event-stream"),
                 Raw(body=json.dumps(body)))
        an.script(*[Reply(tool_calls=[ToolCall("Edit", {"path": "b.py"})])] * 2)
        got = []
        for how in ("stream", "parse"):
            try:
                if how == "stream":
                    with oai(g).chat.completions.stream(**kw) as s:
                        c = s.get_final_completion()
                else:
                    c = oai(g).chat.completions.parse(**kw)
                got.append(f"{how}: {c.choices[0].message.tool_calls[0].function.parsed_arguments!r}")
            except Exception as e:  # noqa: BLE001 - what the caller's code would get
                got.append(f"{how}: raised {type(e).__name__}")
        out.append(f"{case} -> " + ", ".join(got))
    g.stop()
    return "\n  " + "\n  ".join(out)


def hung() -> str:
    from tests.doubles import Delay, Reply
    from tests.harness import two_tier_config, wait_for

    o, an = _doubles()
    cfg = two_tier_config(o.url, an.url, routes={"main": {"policy": "fallback", "targets": ["frontier", "local"],
                                                          "retries": 0}})
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 0.3}
    cfg["breaker"] = {"failures": 5, "cooldown": 30}
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0}]}
    g = _gateway(cfg)
    an.default = Delay(30, Reply(text="never", usage=(400, 400)))
    o.default = Reply(text="local", usage=(10, 10))
    from tests.budgets.test_unread_answers import ask

    answers = [ask(g, i) for i in range(10)]

    def status() -> dict[str, Any]:
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    wait_for(lambda: status()["reservations_in_flight"] == 0)
    used = next(r for r in status()["budgets"] if r["budget"] == "cap")["usd_used"]
    g.stop()
    return (f"{answers.count('local')}/10 answered by the local tier, {len(an.requests)} frontier calls, "
            f"${used:.4f} counted")


def journal(max_bytes: int) -> str:
    from tierwise.config import JournalConfig
    from tierwise.ledger.journal import journal_dir
    from tierwise.ledger.records import LedgerRecord
    from tierwise.ledger.store import Ledger

    path = str(Path(tempfile.mkdtemp()) / "l.db")
    cfg = JournalConfig(**({"max_bytes": max_bytes} if max_bytes and "max_bytes" in JournalConfig.model_fields
                           else {}))
    led = Ledger.open(path, cfg, max_queued=1000)
    gate, entered = threading.Event(), threading.Event()
    write = led._write

    def held(db, batch):  # type: ignore[no-untyped-def]
        entered.set()
        gate.wait()
        return write(db, batch)

    led._write = held  # type: ignore[method-assign]

    def rec(i: int) -> LedgerRecord:
        return LedgerRecord(request_id=f"req_{i}", ts=1_700_000_000 + i, route="main", decision="local",
                            input_tokens=100, output_tokens=10, prompt="p" * 600, answer="a" * 300)

    led.submit(rec(0))
    entered.wait(60)
    peak = 0
    for i in range(1, 60_001):
        led.submit(rec(i))
        if i % 1000 == 0:
            peak = max(peak, sum(f.stat().st_size for f in journal_dir(path).glob("*.jsonl")))
    b = led.backlog()
    gate.set()
    led.flush(120)
    n = led.count()
    led.close()
    return (f"peak journal on disk {peak / 2**20:.1f} MiB (bound {b.get('max_journal_bytes', 'none')}), "
            f"{b['dropped']} dropped, {n} written of 60,001")


if __name__ == "__main__":
    main()
