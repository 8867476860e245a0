"""`kill -9` a real `tierwise serve` under concurrent load: every answer a client got in full
has exactly one ledger row after the restart.

The attacker here is the operating system (the OOM killer, a crash, a supervisor's SIGKILL):
the process dies between two instructions, with rows still waiting for the batch writer. The
gateway is killed the moment the k-th complete answer reaches a client (k random), which is the
worst case for a batched writer: that answer's row was queued microseconds ago.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply
from tests.harness import ServeProcess as Serve
from tests.harness import free_port

TEXT = "every answered request leaves a row behind"
RID = "x-tierwise-request-id"


def config(port: int, tmp: Path, oai_url: str, ant_url: str, dead_port: int) -> str:
    return f"""
server: {{port: {port}}}
ledger: {{path: {tmp / 'ledger.db'}}}
breaker: {{failures: 1000000, cooldown: 1}}
providers:
  o: {{kind: openai, base_url: "{oai_url}/v1", locality: local, timeouts: {{connect: 1, read: 5}}}}
  a: {{kind: anthropic, base_url: "{ant_url}", locality: remote, timeouts: {{connect: 1, read: 5}}}}
  gone: {{kind: openai, base_url: "http://127.0.0.1:{dead_port}/v1", locality: local, timeouts: {{connect: 1, read: 1}}}}
models:
  o: {{provider: o, model: double-model}}
  a: {{provider: a, model: double-model, price: {{input: 3, output: 15}}}}
  gone: {{provider: gone, model: nothing}}
routes:
  # Two steps per request: a target that refuses the connection, then one that answers.
  two-step: {{policy: fallback, targets: [gone, a], retries: 0}}
"""




def ask(oc: openai.OpenAI, ac: anthropic.Anthropic, api: str, stream: bool, model: str, i: int) -> str | None:
    """One request; the gateway's request id when the client got the complete answer, else None."""
    prompt = f"request {i}"
    if api == "openai":
        msgs: Any = [{"role": "user", "content": prompt}]
        if not stream:
            raw = oc.chat.completions.with_raw_response.create(model=model, messages=msgs)
            ok = raw.parse().choices[0].message.content == TEXT
            return raw.headers.get(RID) if ok else None
        with oc.chat.completions.with_streaming_response.create(model=model, messages=msgs, stream=True) as r:
            text, finished = [], False
            for chunk in r.parse():  # ends only after `data: [DONE]` and the end of the body
                for ch in chunk.choices:
                    text.append(ch.delta.content or "")
                    finished |= ch.finish_reason is not None
            return r.headers.get(RID) if finished and "".join(text) == TEXT else None
    msgs = [{"role": "user", "content": prompt}]
    if not stream:
        raw_a = ac.messages.with_raw_response.create(model=model, max_tokens=50, messages=msgs)
        msg = raw_a.parse()
        ok = "".join(b.text for b in msg.content if b.type == "text") == TEXT
        return raw_a.headers.get(RID) if ok else None
    with ac.messages.with_streaming_response.create(model=model, max_tokens=50, messages=msgs, stream=True) as r:
        parts, stopped = [], False
        for ev in r.parse():
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                parts.append(ev.delta.text)
            stopped |= ev.type == "message_stop"
        return r.headers.get(RID) if stopped and "".join(parts) == TEXT else None


def load_until_killed(srv: Serve, kill_after: int, seed: int, clients: int = 8) -> dict[str, tuple[str, bool]]:
    """Concurrent SDK clients until the gateway dies; SIGKILL the moment `kill_after` answers are in.
    Returns {request id: (api, stream)} of every complete answer."""
    answered: dict[str, tuple[str, bool]] = {}
    lock = threading.Lock()
    dead = threading.Event()

    def client(c: int) -> None:
        rng = random.Random(seed * 100 + c)
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="k", max_retries=0, timeout=30) as oc, \
                anthropic.Anthropic(base_url=srv.url, api_key="k", max_retries=0, timeout=30) as ac:
            i = 0
            while not dead.is_set():
                api, stream = rng.choice(["openai", "anthropic"]), rng.random() < 0.5
                model = rng.choice(["o", "a", "two-step"])
                try:
                    rid = ask(oc, ac, api, stream, model, c * 10_000 + i)
                except (openai.APIError, anthropic.APIError, httpx.HTTPError):
                    rid = None  # cut by the kill: not an answer
                i += 1
                if rid is None:
                    continue
                with lock:
                    answered[rid] = (api, stream)
                    if len(answered) == kill_after:
                        os.kill(srv.p.pid, signal.SIGKILL)
                        dead.set()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    srv.p.wait(timeout=10)
    assert srv.p.returncode == -signal.SIGKILL
    return answered


def ledger_rows(path: Path) -> dict[str, tuple[int, int, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT request_id, status, stream, client_format FROM requests").fetchall()
    finally:
        db.close()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.fixture
def doubles():
    o, a = OpenAIDouble(), AnthropicDouble()
    for d in (o, a):
        d.default = Reply(text=TEXT)
        d.start()
    yield o, a
    for d in (o, a):
        d.stop()


def test_kill_9_under_load_loses_no_answered_request(tmp_path, doubles):
    o, a = doubles
    port = free_port()
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(config(port, tmp_path, o.url, a.url, free_port()))
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    all_answered: dict[str, tuple[str, bool]] = {}
    for _ in range(2):  # two crashes in a row: the second start replays on top of the first's rows
        srv = Serve(cfg, port, tmp_path)
        kill_after = rng.randrange(20, 60)
        answered = load_until_killed(srv, kill_after, seed)
        srv.stop()  # (killed: this closes its log)
        seed += 1
        assert len(answered) >= kill_after
        assert {api for api, _ in answered.values()} == {"openai", "anthropic"}
        assert {s for _, s in answered.values()} == {True, False}
        all_answered.update(answered)
    srv = Serve(cfg, port, tmp_path)  # the start replays what the killed process journaled
    try:
        rows = ledger_rows(tmp_path / "ledger.db")
    finally:
        srv.stop()
    lost = sorted(set(all_answered) - set(rows))
    assert not lost, f"seed {seed}: {len(lost)} of {len(all_answered)} answered requests have no ledger row"
    for rid, (api, stream) in all_answered.items():
        status, stored_stream, fmt = rows[rid]
        assert (status, bool(stored_stream), fmt) == (200, stream, api)
    # The clean stop left no journal behind (every row was committed).
    assert not list((tmp_path / "ledger.db.journal.d").glob("*.jsonl"))
