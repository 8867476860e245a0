"""Distributed mode: capability workers on Redis Streams (docs/distributed.md).

    import tierwise.dispatch
    result = await tierwise.dispatch("classify", "Is this spam? ...", priority="high", timeout=30)
    print(result.text)

`tierwise.dispatch(...)` (this package is callable) and `tierwise.dispatch.dispatch(...)` use a
Dispatcher made from the environment (TIERWISE_REDIS_URL, TIERWISE_TENANT, TIERWISE_PREFIX), one
per event loop; make a `Dispatcher` yourself for anything else. `dispatch_sync` is the same for
code without an event loop. Submodules are imported on use, so `import tierwise.config` (which
reads `dispatch.config`) does not load redis.
"""

from __future__ import annotations

import asyncio
import os
import sys
import types
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierwise.dispatch.client import Dispatcher, TaskResult

# One default dispatcher per event loop: a redis asyncio client belongs to the loop it was made in.
_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dispatcher] = weakref.WeakKeyDictionary()


def from_environment() -> Dispatcher:
    from tierwise.dispatch.client import Dispatcher

    return Dispatcher(os.environ.get("TIERWISE_REDIS_URL", "redis://127.0.0.1:6379/0"),
                      tenant=os.environ.get("TIERWISE_TENANT", "default"),
                      prefix=os.environ.get("TIERWISE_PREFIX", "tierwise:"),
                      caller=os.environ.get("TIERWISE_CALLER", "caller"))


async def dispatch(capability: str, payload: Any, *, priority: str = "normal", timeout: float | None = None,
                   local_only: bool | None = None, dispatcher: Dispatcher | None = None) -> TaskResult:
    """Run `payload` (a prompt, or a chat completions body) on a worker serving `capability`."""
    if dispatcher is None:
        loop = asyncio.get_running_loop()
        dispatcher = _defaults.get(loop)
        if dispatcher is None:
            dispatcher = _defaults[loop] = from_environment()
    return await dispatcher.dispatch(capability, payload, priority=priority, timeout=timeout, local_only=local_only)


def dispatch_sync(capability: str, payload: Any, **kw: Any) -> TaskResult:
    """`dispatch` for code that has no event loop running (a script, a notebook cell)."""
    async def once() -> TaskResult:
        d = kw.pop("dispatcher", None) or from_environment()
        try:
            return await dispatch(capability, payload, dispatcher=d, **kw)
        finally:
            await d.close()

    return asyncio.run(once())


def __getattr__(name: str) -> Any:
    if name in ("Dispatcher", "TaskResult"):
        from tierwise.dispatch import client

        return getattr(client, name)
    raise AttributeError(name)


class _CallableModule(types.ModuleType):
    # `tierwise.dispatch` is both this package and the function the API names.
    def __call__(self, capability: str, payload: Any, **kw: Any) -> Any:
        return dispatch(capability, payload, **kw)


sys.modules[__name__].__class__ = _CallableModule
