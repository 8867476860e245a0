"""HMAC-SHA256 tags on what the gateways write to a shared Redis and must not take from anyone else who can write
there: answer-cache entries (`cache.redis_signing_key_env`) and approval decisions
(`approvals.store.signing_key_env`). The secret comes from an environment variable the config names (16+ characters,
the same on every gateway of the prefix); it never reaches Redis, not even as a script argument (arguments show in
MONITOR and the slow log): the tag is computed here and written, or checked, beside the data it covers.
"""

from __future__ import annotations

import hmac
import os

from tierwise.errors import ConfigError

MIN_SECRET = 16  # characters
TAG_BYTES = 32  # an HMAC-SHA256


def secret_from_env(env: str, key_path: str, sharers: str) -> bytes:
    """The secret held by the environment variable `env` (named at `key_path` of the config), or a ConfigError that
    names both: unset or short, nothing would be signed and everything would verify."""
    secret = os.environ.get(env, "")
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"{key_path} names {env}, which is not set or holds fewer than {MIN_SECRET} characters: "
                          f"set it to the same secret on every gateway that shares {sharers}")
    return secret.encode()


def tag(secret: bytes, data: bytes) -> bytes:
    return hmac.digest(secret, data, "sha256")


def verifies(secret: bytes, data: bytes, given: bytes) -> bool:
    return len(given) == TAG_BYTES and hmac.compare_digest(given, tag(secret, data))
