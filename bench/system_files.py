"""The files on this machine the privacy benches read as real-world samples: /usr/share, /usr/lib and the venv's
lib, walked in one order, each file named with its lower-case extension."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Iterator

ROOTS = ("/usr/share", "/usr/lib", os.path.join(sys.prefix, "lib"))


def system_files(exts: Collection[str]) -> Iterator[tuple[str, str]]:
    """(extension, path) of every file under ROOTS whose lower-case extension is one of `exts`."""
    for root in ROOTS:
        for d, _, fs in os.walk(root):
            for f in fs:
                e = os.path.splitext(f)[1].lower()
                if e in exts:
                    yield e, os.path.join(d, f)
