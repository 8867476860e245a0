"""A user's outcomes as one JSON array of row objects in a `.json` file (pandas' `to_json(orient="records")`,
a pretty-printed export): read as the JSONL rows it holds (a row's default id is its item number), an error
naming the line where the item starts and its number."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_BYTES = 512 * 1024 * 1024  # the whole array is parsed at once: beyond this, JSONL (read line by line)


def is_json_array(path: str | Path) -> bool:
    """A `.json` file whose first character (after a byte-order mark and blanks) is `[`."""
    if not str(path).lower().endswith(".json"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return head.startswith(b"[")


def json_array_rows(path: str | Path, error: type[Exception]) -> Iterator[tuple[int, int, Any]]:
    """(item number from 1, the line it starts on, the item) of each item of the array."""
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise error(f"{path}: a JSON array of {size / 2**20:,.0f} MiB is parsed whole; write it as JSONL (one "
                        "object a line, e.g. `jq -c '.[]' data.json > data.jsonl`), which is read line by line")
        text = Path(path).read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x}); save the file as UTF-8") from None
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror}") from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path}:{e.lineno}: not valid JSON ({e.msg.removesuffix(' at')} at column {e.colno})") from None
    except ValueError as e:
        raise error(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise error(f"{path}: JSON nested deeper than Python's parser reads; the rows are flat objects") from None
    if not isinstance(items, list):
        raise error(f"{path}: not a JSON array of rows")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted = 1, 0  # newlines counted up to `counted`: each item's line from the last one's (one pass)
    for n, item in enumerate(items, 1):
        # the item's line, for the error message: skip to the item's start and past it
        while text[pos] in " \t\r\n,":
            pos += 1
        line += _newlines(text, counted, pos)
        counted = pos
        pos = decoder.raw_decode(text, pos)[1]
        yield n, line, item


def _newlines(text: str, start: int, end: int) -> int:
    return text.count("\n", start, end)
