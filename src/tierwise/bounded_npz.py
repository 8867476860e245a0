"""Read an `.npz` of plain arrays with its size bounded before anything is decompressed.

`np.load(allow_pickle=False)` keeps code out of a weights file but not memory: a zip member of a
few kilobytes can inflate to gigabytes, and an `.npy` header can declare a shape whose array numpy
allocates before reading a byte of it. So, before any array is read:

- the file itself is at most `max_file_bytes`;
- it holds at most `MAX_MEMBERS` members, whose uncompressed sizes as the zip's central directory
  lists them add up to at most `max_total_bytes` (Python's zipfile never inflates a member past its
  listed size: a member that holds more fails its CRC check);
- each array's header (shape × item size) fits inside its member's listed size, and no array holds
  Python objects.

Every refusal is a `TooLarge` or `ValueError` whose message names the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

MAX_MEMBERS = 10_000


class TooLarge(ValueError):
    """The file, or what it would decompress to, is past the caps; the message names the file and the cap."""


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _declared_nbytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> int:
    """The bytes the array in this member would take, from its `.npy` header alone."""
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as e:
            raise ValueError(f"{path}: member {info.filename!r} is not a plain .npy array ({e})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: member {info.filename!r} holds Python objects; only numbers are loaded")
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def check_npz(path: str | Path, *, max_file_bytes: int, max_total_bytes: int) -> None:
    """Raise unless `path` is an .npz within the caps (see the module's docstring)."""
    p = Path(path)
    size = p.stat().st_size
    if size > max_file_bytes:
        raise TooLarge(f"{p}: {_mib(size)} on disk, larger than the {_mib(max_file_bytes)} such a file may have")
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise TooLarge(f"{p}: {len(infos):,} members, more than {MAX_MEMBERS:,}")
        listed = sum(i.file_size for i in infos)
        if listed > max_total_bytes:
            raise TooLarge(f"{p}: would decompress to {_mib(listed)}, more than the {_mib(max_total_bytes)} "
                           "its arrays may take")
        for info in infos:
            if _declared_nbytes(zf, info, p) > info.file_size:
                raise TooLarge(f"{p}: member {info.filename!r} declares an array larger than the member "
                               "(a truncated or forged file)")


def load_npz(path: str | Path, *, max_file_bytes: int, max_total_bytes: int) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, after `check_npz`; never unpickles."""
    check_npz(path, max_file_bytes=max_file_bytes, max_total_bytes=max_total_bytes)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
