"""gzip and zlib data inside an encoding (`H4sI...` is base64 of gzip's header, `eJ...` of zlib's): what `curl
--compressed` bodies, Kubernetes and Helm release secrets, JWT-like tokens and log shippers carry. Round 13
(privacy13): such a blob was a high-entropy SECRET at most (nothing under a `pii`-only policy) while any tool
inflates it at once. `unpack` inflates it, bounded: at most `RATIO` times its own size plus `SLACK` bytes (a
compression bomb yields its first bytes, and the encoded view's cost stays linear in the text); what lies past the
bound is not read.
"""

from __future__ import annotations

import zlib

RATIO = 8
SLACK = 4096
_GZIP = b"\x1f\x8b\x08"


def unpack(raw: bytes) -> bytes | None:
    """The inflated bytes of gzip or zlib data `raw` (up to the bound), or None: not such data, or broken before
    any byte came out."""
    if len(raw) < 10:
        return None
    if raw[:3] == _GZIP:
        wbits = 31
    elif raw[0] == 0x78 and (raw[0] << 8 | raw[1]) % 31 == 0:  # zlib's header: CMF 0x78 and its check bits
        wbits = 15
    else:
        return None
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(raw, RATIO * len(raw) + SLACK)
    except zlib.error:
        return None
    return out or None
