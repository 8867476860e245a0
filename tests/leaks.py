"""Where leaked sockets come from: `pytest -p tests.leaks` (with `PYTHONTRACEMALLOC=N`) names the allocation site.

Not part of the suite's normal run. A socket (or transport, event loop, file) a test forgets to close is closed by
the garbage collector, whenever it runs: its ResourceWarning lands in whatever test is running then, often an
unrelated one (under `-W error` that test fails). This plugin collects garbage after every test
(`TIERWISE_LEAKS_GC=module`: after each test file, much cheaper), so a leak is charged to the test (file) that made it,
records every ResourceWarning with the traceback of the object's allocation when tracemalloc traces (slow: start
with the test file found, `PYTHONTRACEMALLOC=25`), and prints them grouped by allocation site (or by test) at the end.

    TIERWISE_LEAKS_GC=module .venv/bin/python -m pytest -p no:cacheprovider -p tests.leaks -W always::ResourceWarning tests/x
    PYTHONTRACEMALLOC=25 .venv/bin/python -m pytest -p no:cacheprovider -p tests.leaks -W always::ResourceWarning tests/x/test_y.py
"""

from __future__ import annotations

import gc
import os
import tracemalloc
import warnings
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PER_MODULE = os.environ.get("TIERWISE_LEAKS_GC") == "module"
_seen: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)


def _site(source: Any, nodeid: str) -> tuple[str, ...]:
    tb = tracemalloc.get_object_traceback(source) if source is not None else None
    if tb is None:  # (PYTHONTRACEMALLOC=25 names the allocation site)
        return (f"(unknown) collected in {nodeid.split('::')[0] if _PER_MODULE else nodeid}",)
    frames = [f for f in tb if f.filename.startswith(_ROOT) and "/.venv/" not in f.filename]
    return tuple(f"{os.path.relpath(f.filename, _ROOT)}:{f.lineno}" for f in (frames or list(tb)[-3:]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        if not (_PER_MODULE and nextitem is not None and nextitem.path == item.path):
            # Inside the test's own catch_warnings (pytest's warnings plugin wraps the whole protocol).
            with warnings.catch_warnings():
                warnings.simplefilter("always", ResourceWarning)
                gc.collect()


def pytest_warning_recorded(warning_message: warnings.WarningMessage, when: str, nodeid: str) -> None:
    if issubclass(warning_message.category, ResourceWarning):
        _seen[_site(warning_message.source, nodeid)].append((nodeid, str(warning_message.message)[:160]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tr = terminalreporter
    tr.section(
        f"leaks: {sum(len(v) for v in _seen.values())} ResourceWarnings, {len(_seen)} allocation sites"
    )
    for site, hits in sorted(_seen.items(), key=lambda kv: -len(kv[1])):
        tr.write_line(f"{len(hits)} x allocated at (innermost last):")
        for frame in site:
            tr.write_line(f"    {frame}")
        for nodeid, message in hits[:4]:
            tr.write_line(f"  in {nodeid}: {message}")
