"""The weak sandbox, for machines without bubblewrap where the operator said `allow_weak`: a
fresh `python -I -S` in its own session with an empty environment, rlimits and the audit hook,
in a private 0700 folder removed afterwards. No filesystem, network or process isolation from
the OS: its `layers` say so ("rlimits", "audit")."""

from __future__ import annotations

import asyncio
import os
import tempfile

from tierwise.sandbox import bwrap
from tierwise.sandbox.audit_boot import BOOT
from tierwise.sandbox.cleanup import remove_tree


def make_folder(files: dict[str, bytes]) -> str:
    folder = tempfile.mkdtemp(prefix="tierwise-sandbox-")
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)
    return folder


def argv(folder: str, entry: str, args: list[str], ro_binds: list[str], python: bool, audit_hook: bool) -> list[str]:
    if not python:
        return [entry, *args]
    if not audit_hook:
        return [bwrap.interpreter(), "-I", "-S", entry, *args]
    return [bwrap.interpreter(), "-I", "-S", "-c", BOOT, folder, entry, *ro_binds, "--", *args]


async def remove_folder(folder: str) -> None:
    await asyncio.to_thread(remove_tree, folder)
