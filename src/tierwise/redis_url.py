"""`RedisUrl`: a config field holding a Redis URL that must parse as one, checked when the config loads.

A password holding an unencoded `/`, `?` or `#` ends the URL's authority early: `redis://:Abc/def@host/0` has
`Abc` where the port goes, and redis-py's error (`Port could not be cast to integer value as 'Abc'`) put that
part of the password on the console from `tierwise budgets`, and as a traceback from `cache`, `doctor` and
`worker --list` (session 25, secrets25); `redis://:12345/x@host` connects to port 12345 of localhost, whose
connection error prints it. Such a URL is refused at load in words that never repeat it (it holds a secret).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

SCHEMES = ("redis", "rediss", "unix")
ENCODE = ("is not a Redis URL tierwise can read (not repeated here: it may hold a password): it needs a host, a "
          "port of 0-65535, and a `/`, `?` or `#` in its user name or password percent-encoded (%2F, %3F, %23)")


def checked(url: str) -> str:
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        raise ValueError(ENCODE) from None
    if u.scheme not in SCHEMES:
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    if u.scheme != "unix" and not u.hostname:  # `redis://:12345/x@host`: the password's start read as the port
        raise ValueError(ENCODE)
    del port
    return url


RedisUrl = Annotated[str, AfterValidator(checked)]
