"""Pieces of the programs the sandbox attack tests run inside the sandbox."""

from __future__ import annotations


def attempt_prelude(word: str) -> str:
    """`attempt(name, fn)` for a sandboxed program: prints `name <word>` when `fn()` worked, `name refused <errno>`
    when the kernel refused it (an OSError)."""
    return (f"def attempt(name, fn):\n    try:\n        fn()\n        print(name, {word!r})\n"
            "    except OSError as e:\n        print(name, \"refused\", e.errno)\n")
