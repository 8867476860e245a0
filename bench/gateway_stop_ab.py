"""Interleaved A/B of a test gateway's stop (tests/harness.py `GatewayServer.stop`): an older harness file against
the worktree's. Idle, and after one SDK request whose client is closed first; 20 rounds each, the order alternating.

    git show <commit>:tests/harness.py > /tmp/harness_old.py
    PYTHONPATH=src:. .venv/bin/python bench/gateway_stop_ab.py /tmp/harness_old.py
"""

from __future__ import annotations

import importlib.util
import pathlib
import statistics
import sys
import tempfile
import time
from types import ModuleType
from typing import Any

import openai

import tests.harness as new
from tests.doubles import AnthropicDouble, OpenAIDouble


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("harness_old", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    old = load(sys.argv[1])
    o, a = OpenAIDouble().start(), AnthropicDouble().start()
    tmp = pathlib.Path(tempfile.mkdtemp())

    def one(h: Any, request: bool) -> float:
        g = h.GatewayServer(new.make_config(new.two_tier_config(o.url, a.url), tmp)).start()
        if request:
            with openai.OpenAI(base_url=g.url + "/v1", api_key="k", max_retries=0) as c:
                c.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
        t = time.perf_counter()
        g.stop()
        return time.perf_counter() - t

    for request in (False, True):
        r: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(20):
            for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
                r[name].append(one(old if name == "old" else new, request))
        print(f"{'one request served' if request else 'idle'}: stop median old {statistics.median(r['old']):.3f} s, "
              f"new {statistics.median(r['new']):.3f} s")
    o.stop()
    a.stop()


if __name__ == "__main__":
    main()
