"""`doctor`'s check of `ensembles.script_env` (review38c): what of the gateway's environment trusted host scripts get.
A name there passes a secret to every trusted script as the operator asked; a `PREFIX*` passes none
(ensembles.scripts.host_environment), so a user who wrote `MYTOOL_*` for MYTOOL_TOKEN learns why the script lacks it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierwise.config import Config


def script_env_secrets(cfg: Config) -> list[str]:
    """Warnings about the secrets `ensembles.script_env` passes to trusted scripts, and those its prefixes leave out
    (variables named only: never a value)."""
    from tierwise.secret_scrub import secret_variable

    names = cfg.ensembles.script_env
    exact = [n for n in names if not n.endswith("*") and n in os.environ and secret_variable(n, os.environ[n])]
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    dropped = sorted(k for k, v in os.environ.items()
                     if prefixes and k.startswith(prefixes) and k not in names and secret_variable(k, v))
    out = []
    if exact:
        out.append(f"ensembles.script_env passes {', '.join(exact)} to every trusted script (it holds a secret): a "
                   "script's output reaches models, the ledger and clients; pass it only to a script that needs it")
    if dropped:
        shown = ", ".join(dropped[:8]) + (f" and {len(dropped) - 8} more" if len(dropped) > 8 else "")
        out.append(f"ensembles.script_env's prefixes match {shown}, which hold a secret and are not passed (a prefix "
                   "passes no secret): name one exactly in script_env if a trusted script needs it")
    return out
