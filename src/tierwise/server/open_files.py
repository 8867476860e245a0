"""The process's open-file limit and the connection cap under it (`tierwise serve`, server/limits.py)."""

from __future__ import annotations

import resource


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (an OS bound the operator set); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int) -> int:
    """`max_connections`, lowered so client sockets never take the descriptors everything else needs
    (upstream connections, the ledger, sandbox pipes): accept() failing with EMFILE stops the server
    from accepting anyone, including the client it would have served."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    reserve = max(64, soft // 8)
    return max(8, min(configured, soft - reserve))
