"""Pieces of the programs the sandbox attack tests (and benches) run inside the sandbox, and the fixture that makes
their runs weak ones (no bubblewrap)."""

from __future__ import annotations

import os
import tempfile
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


# flock between two runs with threads allowed (`.format(start=<time.time() the first bit starts>)`): the sender holds
# or drops LOCK_EX on the standard library's os.py a bit a second (10110100), the receiver asks with LOCK_NB half a
# second into each and prints the bits it saw: 0 granted, 1 held by another, - refused (session 35: ENOSYS with
# threads).
FLOCK_SENDER = """
import fcntl, os, time
fd = os.open(os.__file__, os.O_RDONLY)
start = {start}
for i, b in enumerate("10110100"):
    while time.time() < start + i:
        time.sleep(0.01)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if b == "1" else fcntl.LOCK_UN)
    except OSError:
        pass
time.sleep(1)
"""
FLOCK_RECEIVER = """
import fcntl, os, time
start = {start}
got = ""
for i in range(8):
    while time.time() < start + i + 0.5:
        time.sleep(0.01)
    other = os.open(os.__file__, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        got += "0"
    except BlockingIOError:
        got += "1"
    except OSError:
        got += "-"
    os.close(other)
print(got)
"""


def host_file(prefix: str, content: str = '{"host": "state"}', name: str = "state.json") -> str:
    """A host program's world-writable file (a 0666 log, lock or state file) in a fresh 0755 folder of /tmp: the path;
    the caller removes its folder."""
    folder = tempfile.mkdtemp(prefix=prefix)
    os.chmod(folder, 0o755)
    path = os.path.join(folder, name)
    with open(path, "w") as fh:
        fh.write(content)
    os.chmod(path, 0o666)
    return path
