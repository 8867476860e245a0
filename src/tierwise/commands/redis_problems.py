"""What a Redis named in the config answered when pinged, said the same way by `doctor` and `serve`: a refused
user or password, an error it answered with (a database number the server does not have), or no answer. One
line naming host:port, Redis's own words (scrubbed) and the setting to fix; never the URL or its password."""

from __future__ import annotations

from typing import Any


def setting(part: str) -> str:
    """The config key holding the URL of a Redis user (`budgets.store`, `dispatch`, ...)."""
    return "observability.dashboard.presence_redis_url" if part.endswith("presence") else f"{part}.redis_url"


def refused_credentials(e: BaseException) -> bool:
    import redis.exceptions as rexc

    if isinstance(e, rexc.AuthenticationError | rexc.AuthenticationWrongNumberOfArgsError):
        return True
    return isinstance(e, rexc.ResponseError) and str(e).startswith(("WRONGPASS", "NOAUTH", "AUTH "))


def answered_with_error(e: BaseException) -> bool:
    """The server answered, with an error no wait will mend (`DB index is out of range` for `/99`)."""
    import redis.exceptions as rexc

    return isinstance(e, rexc.ResponseError) and not refused_credentials(e)


def words(err: BaseException) -> str:
    """The exception's type and Redis's own words: scrubbed, control characters escaped."""
    from tierwise.commands.terminal_text import inert

    detail = inert(str(err))
    return f"{type(err).__name__}" + (f": {detail}" if detail else "")


def explain(err: BaseException, parts: list[str]) -> str:
    """What went wrong, after `Redis at host:port (parts) `. Before session 32, `doctor` said only
    `unreachable (ResponseError)` for a database number the server lacks, and `unreachable (AuthenticationError)`
    for a refused password, and `serve` called the first `not reachable`."""
    said = words(err)
    if refused_credentials(err):
        return f"refused the credentials of its URL ({said}): fix the user or password in {setting(parts[0])}"
    if answered_with_error(err):
        return f"answered with an error ({said}): fix {setting(parts[0])}"
    return f"is not reachable ({said})"


async def ping(url: str, timeout: float = 5.0) -> BaseException | None:
    """None when the Redis at `url` answers PING, else what it raised."""
    import asyncio

    from tierwise.dispatch.connection import connect

    client: Any = connect(url)  # (registers the password with the scrubber)
    try:
        await asyncio.wait_for(client.ping(), timeout)
        return None
    except Exception as e:  # noqa: BLE001 - the answer is the exception
        return e
    finally:
        await client.aclose()
