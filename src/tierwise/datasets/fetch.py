"""Download files whose size and SHA-256 are known in advance: resumable, bounded, verified.

Each file goes to `<name>.part` first and is renamed into place only when its size and SHA-256
match the manifest, so a folder never holds a half-written or altered file under its real name.
A `.part` left by an interrupted run is resumed with an HTTP Range request; a server that ignores
the range (answers 200) is read from the start again. A body longer than the file's known size,
or a Content-Length that says so, is refused before it fills the disk; so is a total above the
caller's cap. A checksum mismatch removes the `.part` (the next run starts clean) and says which
file and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 16
TIMEOUT_S = 60.0
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class FetchError(Exception):
    """A download that failed or did not match; the message names the file and the reason."""


class Unreachable(FetchError):
    """The source did not answer at all (no network, a name that does not resolve, a refused connection)."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str  # where it goes, relative to the destination folder
    size: int
    sha256: str
    url: str


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def matches(path: Path, f: RemoteFile) -> bool:
    """Is the file at `path` exactly the one the manifest names (size, then SHA-256)?"""
    try:
        return path.is_file() and path.stat().st_size == f.size and sha256_of(path) == f.sha256
    except OSError:
        return False


def fetch_all(files: Iterable[RemoteFile], dest: Path, *, max_total_bytes: int,
              progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Bring every file into `dest`; returns the paths downloaded (the ones already there are kept)."""
    files = list(files)
    total = sum(f.size for f in files)
    if total > max_total_bytes:
        raise FetchError(f"the files add up to {total} bytes, over the cap of {max_total_bytes}")
    fetched = []
    for f in files:
        target = _inside(dest, f.path)
        if matches(target, f):
            continue
        progress(f"fetching {f.path} ({f.size} bytes)")
        fetch_one(f, target)
        fetched.append(f.path)
    return fetched


def _inside(dest: Path, rel: str) -> Path:
    target = (dest / rel).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise FetchError(f"{rel!r} would land outside {dest}")
    return target


def fetch_one(f: RemoteFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > f.size:  # not a prefix of this file: start again
        part.unlink()
        have = 0
    if have < f.size:
        _download(f, part, have)
    if part.stat().st_size != f.size or sha256_of(part) != f.sha256:
        got = sha256_of(part)
        part.unlink()
        raise FetchError(f"{f.path}: checksum mismatch (expected sha256 {f.sha256}, got {got}); "
                         f"removed the download, run again to retry")
    os.replace(part, target)


def _download(f: RemoteFile, part: Path, have: int) -> None:
    req = urllib.request.Request(f.url, headers={"User-Agent": "tierwise-data", "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)  # noqa: S310 (http/https URLs from our manifest)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the range starts past the end: what we hold is all there is
            return
        raise FetchError(f"{f.path}: HTTP {e.code} from {f.url}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unreachable(f"{f.path}: cannot reach {f.url} ({reason})") from None
    with resp:
        start = 0
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                raise FetchError(f"{f.path}: the server answered a range other than the one asked for")
            start = have
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and start + int(length) > f.size:
            raise FetchError(f"{f.path}: the server offers {start + int(length)} bytes; the file has {f.size} "
                             "(refused)")
        with part.open("r+b" if start else "wb") as out:
            out.seek(start)
            out.truncate()
            written = start
            try:
                while chunk := resp.read(CHUNK):
                    written += len(chunk)
                    if written > f.size:
                        out.close()
                        part.unlink()
                        raise FetchError(f"{f.path}: the server sent more than the file's {f.size} bytes (refused)")
                    out.write(chunk)
            except (OSError, urllib.error.URLError) as e:  # cut off: what arrived stays for a resume
                raise FetchError(f"{f.path}: the download broke off after {written} of {f.size} bytes ({e}); "
                                 "run again to resume") from None
            if written < f.size:  # the body ended early (a short read is not an error to http.client)
                raise FetchError(f"{f.path}: the download broke off after {written} of {f.size} bytes; "
                                 "run again to resume")
