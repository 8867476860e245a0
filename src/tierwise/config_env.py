"""`${VAR}` in a config, and the keys whose value is the *name* of a variable holding a secret.

`interpolate` replaces `${VAR}` and `${VAR:-default}` in every string of the parsed YAML, with the key's line
in the error when a variable is not set. Keys that name a secret's variable (`api_key_env`, `api_keys_env`,
`admin_keys_env`, `viewer_keys_env`, `privacy.mapping.key_env`) must hold a variable's name: the name is printed
("X is not set"), so `${X}` there, or a pasted key, would put the secret on the console; `interpolate` refuses
the first and `check_env_names` the second, never repeating the value. `err` builds the error with the key's
line (config.py's `_err`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tierwise.errors import ConfigError

if TYPE_CHECKING:
    from tierwise.config import Config

Err = Callable[[str, "str | None", str, "dict[str, int]"], ConfigError]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keys whose value is the *name* of an environment variable holding a secret (providers' api_key_env,
# server.api_keys_env / admin_keys_env, dashboard viewer_keys_env, privacy.mapping.key_env), as a path ends.
_NAMES_ENV_VAR = re.compile(r"_env(?:\[\d+\](?:\.env)?)?$")


def interpolate(node: Any, path: str, file: str | None, index: dict[str, int], err: Err) -> Any:
    if isinstance(node, str):
        if "${" in node and _NAMES_ENV_VAR.search(path):
            # `api_key_env: ${ANTHROPIC_API_KEY}` would put the key itself where its variable's name belongs, and
            # the name is printed ("ANTHROPIC_API_KEY is not set"): the key would reach the console.
            m = _ENV.search(node)
            name = m.group(1) if m else "NAME"
            raise err(f"takes the variable's name ({name}), not `${{{name}}}`, which would put the secret itself in "
                       "its place", file, path, index)

        def sub(m: re.Match[str]) -> str:
            val = os.environ.get(m.group(1))
            if val is None:
                if m.group(2) is None:
                    # "the ..." first: a message reading `api_key_env: environment` would look like a key to the
                    # secret scrubber, which every error message passes through
                    raise err(f"the environment variable {m.group(1)} is not set (export it, or write "
                               f"${{{m.group(1)}:-default}} for a default)", file, path or "(root)", index)
                return m.group(2)
            return val

        return _ENV.sub(sub, node)
    if isinstance(node, dict):
        return {k: interpolate(v, f"{path}.{k}" if path else str(k), file, index, err) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, f"{path}[{i}]", file, index, err) for i, v in enumerate(node)]
    return node


def _env_names(cfg: Config) -> Iterator[tuple[str, str]]:
    """(key path, value) of every key that names an environment variable holding a secret."""
    from tierwise.config import ClientKey

    for name, p in cfg.providers.items():
        if p.api_key_env is not None:
            yield f"providers.{name}.api_key_env", p.api_key_env
    for i, k in enumerate(cfg.server.api_keys_env):
        yield (f"server.api_keys_env[{i}].env", k.env) if isinstance(k, ClientKey) else (f"server.api_keys_env[{i}]", k)
    for i, n in enumerate(cfg.server.admin_keys_env):
        yield f"server.admin_keys_env[{i}]", n
    for i, n in enumerate(cfg.observability.dashboard.viewer_keys_env):
        yield f"observability.dashboard.viewer_keys_env[{i}]", n
    mapping = getattr(cfg.privacy, "mapping", None)
    if getattr(mapping, "key_env", None) is not None:
        yield "privacy.mapping.key_env", mapping.key_env  # type: ignore[union-attr]


def _looks_like_a_secret(value: str) -> bool:
    """A pasted key rather than a variable's name: a known key shape, or a long run mixing lower case and digits
    (variable names are upper case by convention; `gsk_…`, `hf_…` and hex keys are valid names otherwise)."""
    from tierwise.secret_scrub import scrub

    return scrub(value) != value or (len(value) >= 24 and any(c.islower() for c in value)
                                     and any(c.isdigit() for c in value))


def check_env_names(cfg: Config, file: str | None, index: dict[str, int], err: Err) -> None:
    """Each such key holds a variable's name, never the secret: the names are printed (`X is not set`), so a key
    pasted in place of its variable's name would reach the console. The value is never repeated here."""
    for path, value in _env_names(cfg):
        if not ENV_NAME.fullmatch(value) or _looks_like_a_secret(value):
            raise err("is not the name of an environment variable (letters, digits and _): put the secret in a "
                       "variable (`export MY_KEY=...`) and write that variable's name here (`MY_KEY`), never the "
                       "secret itself", file, path, index)
