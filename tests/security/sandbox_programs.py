"""Pieces of the programs the sandbox attack tests run inside the sandbox, and the fixture that makes their runs
weak ones (no bubblewrap)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tierwise import sandbox
from tierwise.sandbox import bwrap as bwrap_mod


@pytest.fixture(autouse=True)
def weak_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every run of the module importing this is a weak one (bubblewrap hidden, `allow_weak` on)."""
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    yield
    sandbox.status.cache_clear()
    sandbox.configure()


def attempt_prelude(word: str) -> str:
    """`attempt(name, fn)` for a sandboxed program: prints `name <word>` when `fn()` worked, `name refused <errno>`
    when the kernel refused it (an OSError)."""
    return (f"def attempt(name, fn):\n    try:\n        fn()\n        print(name, {word!r})\n"
            "    except OSError as e:\n        print(name, \"refused\", e.errno)\n")
