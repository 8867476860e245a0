"""Connecting to Redis for distributed mode: one client per process, errors that mean "Redis is
away for now" (retry with backoff) told apart from the rest, and a URL fit for logs."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
import redis.exceptions as rexc

from tierwise.secret_scrub import note

# Redis unreachable, restarting or still loading its data: every loop waits and tries again.
REDIS_DOWN: tuple[type[Exception], ...] = (rexc.ConnectionError, rexc.TimeoutError, OSError)
# Redis answered, but with an error (NOPERM, NOSCRIPT after a failover, WRONGTYPE ...), or is away.
REDIS_ANY: tuple[type[Exception], ...] = (*REDIS_DOWN, rexc.RedisError)


def connect(url: str, *, block_s: float = 0.0) -> Any:
    """A client whose socket timeout outlasts the longest blocking read it will make."""
    password = urlsplit(url).password
    if password:
        note(unquote(password))  # never in a log line or an error message
    return redis.from_url(url, socket_timeout=max(5.0, block_s + 5.0), socket_connect_timeout=2.0,
                          health_check_interval=0, decode_responses=False)


def tls_built_early(client: Any) -> object | None:
    """Build a `rediss://` client's TLS context now, and return it for its owner to keep: redis-py builds it on the
    first connect, inside `socket_connect_timeout`, and shares it only while something holds it. Loading the CA
    bundle took 0.1 s at load 16 on 2 cores; past a 0.5 s timeout, a Redis that refused the connection (or would
    have answered) was reported as `TimeoutError: Timeout connecting to server` (session 31)."""
    pool = client.connection_pool
    if not issubclass(pool.connection_class, redis.SSLConnection):
        return None
    return pool.make_connection().ssl_context.get()  # (an unconnected connection object: no I/O)


def where(url: str) -> str:
    """host:port (or the socket path) of a Redis URL, without user or password: safe to log."""
    u = urlsplit(url)
    if u.scheme == "unix":
        return u.path or "unix socket"
    return f"{u.hostname or '127.0.0.1'}:{u.port or 6379}"


def waiting_for(url: str, e: BaseException) -> str:
    """Why a loop waits for Redis, for a log line: a refused user name or password is said as such (redis-py's
    AuthenticationError is a ConnectionError, and a worker with a wrong password logged "not reachable yet;
    retrying" forever; session 35, newuser35b)."""
    if isinstance(e, rexc.AuthenticationError) or "WRONGPASS" in str(e):
        return (f"Redis at {where(url)} refused the user name or password in dispatch.redis_url "
                "(fix it, or the Redis ACL user); retrying")
    return f"Redis at {where(url)} is not reachable yet; retrying"


class Backoff:
    """Exponential backoff with full jitter, so a fleet that lost Redis does not return at once."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.tries = 0

    def next(self) -> float:
        delay = random.uniform(0, min(self.cap, self.base * (2 ** self.tries)))
        self.tries = min(self.tries + 1, 30)
        return delay

    def reset(self) -> None:
        self.tries = 0


def text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
