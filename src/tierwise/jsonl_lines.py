"""Reading a user's JSONL file the way editors and spreadsheets write it: a UTF-8 byte-order mark (Excel,
Notepad), CRLF line ends and blank lines are fine, and so is a gzip-compressed file (`gzip data.jsonl`, read as it
decompresses); text in another encoding, another archive format, a line past 64 MiB or a line that is not JSON is
an error naming the file's own line (blank lines counted) and what to do."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

# One line is read whole before it is parsed: without a cap a file without line ends (or a small gzip file that
# decompresses to one endless line) took memory without bound.
MAX_LINE_BYTES = 64 << 20


def jsonl_lines(path: str | Path, error: type[Exception] = ValueError,
                problems: list[str] | None = None) -> Iterator[tuple[int, Any]]:
    """(line number in the file, parsed value) of each non-blank line; `error(message)` for what cannot be read.
    With `problems`, a line after the first that is not UTF-8 or not JSON is added to it and the reading goes on (a
    file with a few bad lines is then fixed in one pass); a bad first line (a CSV header, one JSON document over many
    lines) or a file that cannot be read still raises."""
    try:
        first = True  # the first non-blank line: where a CSV header or a whole JSON document shows
        with open(path, "rb") as f, _decompressed(path, f, error) as lines:
            for n, raw in enumerate(iter(lambda: lines.readline(MAX_LINE_BYTES + 1), b""), 1):
                if len(raw) > MAX_LINE_BYTES:
                    raise error(f"{path}:{n}: a line longer than {MAX_LINE_BYTES >> 20} MiB (one row a line: is this "
                                "JSONL? a prompt that long fits no model)")
                if n == 1:
                    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                        raise error(f"{path}: UTF-16 text; save the file as UTF-8 (one JSON object a line)")
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                value, problem = _parse(path, n, raw, first)
                if problem is not None:
                    if problems is None or first:  # a first line that is no JSON: the file is of another kind
                        raise error(problem)
                    problems.append(problem)
                    first = False
                elif value is not _BLANK:
                    first = False
                    yield n, value
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # a cut-off download, a damaged file
        raise error(f"{path}: gzip-compressed but cannot be decompressed ({e or 'it ends too early'}); "
                    "fetch or compress it again") from None
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror}") from None


# Archive formats by their first bytes: each read as JSONL was "not UTF-8 (byte 0x..); save the file as UTF-8",
# which sends the user to re-encode a file that only needs unpacking.
_ARCHIVES = ((b"PK\x03\x04", "a zip archive", "unzip"), (b"BZh", "bzip2-compressed", "bunzip2 -k"),
             (b"\xfd7zXZ\x00", "xz-compressed", "unxz -k"), (b"\x28\xb5\x2f\xfd", "zstd-compressed", "unzstd"))


def _decompressed(path: str | Path, f: BinaryIO, error: type[Exception]) -> Any:
    """`f` itself, or a gzip reader over it when the file starts with gzip's magic bytes."""
    head = f.peek(6)[:6] if isinstance(f, io.BufferedReader) else b""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=f, mode="rb")
    for magic, kind, tool in _ARCHIVES:
        if head.startswith(magic):
            raise error(f"{path}: {kind}, not text; unpack it first (`{tool} {Path(path).name}`) and give the "
                        "JSONL file inside (gzip is read as it is)")
    return contextlib.nullcontext(f)


_BLANK = object()


def _parse(path: str | Path, n: int, raw: bytes, first: bool) -> tuple[Any, str | None]:
    """(the line's value or _BLANK, None), or (None, what is wrong with the line)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"{path}:{n}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); save the file as UTF-8"
    if not line.strip():
        return _BLANK, None
    try:  # without its line end: a line cut short inside a string is "Unterminated string"
        return json.loads(line.rstrip("\r\n")), None
    except json.JSONDecodeError as e:
        return None, (f"{path}:{n}: not valid JSON ({e.msg.removesuffix(' at')} at column {e.colno})"
                      f"{_first_line_hint(line) if first else ''}")
    except ValueError as e:  # e.g. an integer past Python's 4,300-digit conversion limit
        return None, f"{path}:{n}: not valid JSON ({e})"
    except RecursionError:
        return None, f"{path}:{n}: JSON nested deeper than Python's parser reads; each line is one flat object"


def _first_line_hint(line: str) -> str:
    """Why a file's first line is not JSON, when it shows: a CSV/TSV header, or one JSON document over many lines."""
    text = line.strip()
    if text in ("[", "{") or (text.startswith(('{"', "[{")) and not text.endswith(("}", "]"))):
        return ("; the file looks like one JSON document spread over lines: JSONL is one whole object per line, "
                "e.g. `jq -c '.[]' data.json > data.jsonl` for an array")
    if not text.startswith(("{", "[", '"')) and ("," in text or "\t" in text):
        return ("; the file looks like CSV or TSV: this reads JSON Lines, one JSON object a line, e.g. "
                '{"prompt": "...", "strong": 1, "weak": 0}')
    return ""
