"""`per: key` budgets and rate limits whose `match` names no gateway key: they cover no request, so the spend or
rate they were written to cap is not capped. A key's name is its `name:` or, by default, its variable's name
(`TEAM_ALICE_KEY`, not the `team-alice` an operator may have in mind), which is easy to get wrong."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierwise.budgets.config import BudgetLimit, RateLimit
    from tierwise.config import Config


def key_names(cfg: Config) -> list[str]:
    return [k if isinstance(k, str) else (k.name or k.env) for k in cfg.server.api_keys_env]


def unmatched_key_limits(cfg: Config) -> list[str]:
    """One warning per `per: key` budget or rate limit whose globs match none of the gateway's key names (nothing
    when the gateway takes no keys: then there is no name to compare with)."""
    names = key_names(cfg)
    if not names:
        return []
    limits: list[tuple[str, BudgetLimit | RateLimit]] = [("budgets", b) for b in (cfg.budgets.limits if cfg.budgets is not None else [])]
    limits += [("rate_limits", r) for r in (cfg.rate_limits.limits if cfg.rate_limits is not None else [])]
    out = []
    for section, limit in limits:
        if limit.per != "key" or limit.match is None:
            continue
        if not any(fnmatchcase(n, g) for n in names for g in limit.match):
            out.append(f"{section}.limits {limit.name}: `match: [{', '.join(limit.match)}]` matches no gateway key, so it caps "
                       f"nothing; a key's name is its `name:` or its variable's (these keys: {', '.join(names)})")
    return out
