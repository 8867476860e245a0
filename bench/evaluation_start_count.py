"""Bytecodes of starting one background evaluation on a `reflective` route (`ReflectiveRoute._spawn`: on the
request path of every judged request) and of its end (the task's done callback), for `--keys` gateway keys. The
evaluation itself is replaced by an empty coroutine, so only the start and the bookkeeping are counted. A count,
so the machine's load does not move it. A/B: run it once per tree (a tree whose `_spawn` takes no key is called
without one).

    PYTHONPATH=src .venv/bin/python bench/evaluation_start_count.py
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/evaluation_start_count.py
"""

from __future__ import annotations

import argparse
import asyncio
import inspect

from bytecodes import counted  # bench/bytecodes.py (the script's folder is on sys.path)


class _Target:
    def __init__(self, name: str) -> None:
        self.name = name


async def run(requests: int, keys: int) -> float:
    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.learning.loop import LearningLoop, LoopSettings, Plan
    from tierwise.policies.base import Context
    from tierwise.policies.reflective import ReflectiveRoute
    from tierwise.trace import Trace

    route = ReflectiveRoute("r", LearningLoop("r", LoopSettings()), _Target("l"), _Target("f"), _Target("j"))

    async def nothing(*_args: object) -> None:
        return None

    route._evaluate = nothing  # type: ignore[method-assign]
    keyed = "key" in inspect.signature(route._spawn).parameters
    req = Request(model="r", messages=[Message("user", [TextBlock("hi")])])
    plan = Plan("local", True, False, "first-use")
    ctxs = [Context(Trace(f"req_{i}", "r"), None, None) for i in range(requests)]
    with counted() as n:
        for i, ctx in enumerate(ctxs):
            if keyed:
                route._spawn(req, ctx, plan, "chat", "answer", key=f"key-{i % keys}")
            else:
                route._spawn(req, ctx, plan, "chat", "answer")
            await asyncio.sleep(0)  # the task runs and its done callback with it
            await asyncio.sleep(0)
    assert route.dropped == 0 and not route._background
    return n[0] / requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=4)
    a = ap.parse_args()
    per = asyncio.run(run(a.requests, a.keys))
    print(f"bytecodes per evaluation started and ended ({a.keys} keys): {per:,.1f}")


if __name__ == "__main__":
    main()
