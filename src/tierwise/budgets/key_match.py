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
    """One warning per `per: key` budget or rate limit whose globs match none of the gateway's key names. A gateway
    that takes no keys names every request's key `anonymous` (budgets.controller.ANONYMOUS): a `match` that leaves it
    out covers no request (docs/budgets.md's `match: [team-a]` pasted into such a config capped nothing)."""
    from tierwise.budgets.controller import ANONYMOUS

    names = key_names(cfg)
    limits: list[tuple[str, BudgetLimit | RateLimit]] = [("budgets", b) for b in (cfg.budgets.limits if cfg.budgets is not None else [])]
    limits += [("rate_limits", r) for r in (cfg.rate_limits.limits if cfg.rate_limits is not None else [])]
    out = []
    for section, limit in limits:
        if limit.per != "key" or limit.match is None:
            continue
        if not names:
            if not any(fnmatchcase(ANONYMOUS, g) for g in limit.match):
                out.append(f"{section}.limits {limit.name}: `match: [{', '.join(limit.match)}]` caps nothing: the "
                           f"gateway takes no keys (no `server.api_keys_env`), so every request's key is `{ANONYMOUS}`. "
                           "Fix: give clients keys in server.api_keys_env (a key's name is its `name:` or its "
                           "variable's), or drop `match` / use `per: global`")
        elif not any(fnmatchcase(n, g) for n in names for g in limit.match):
            out.append(f"{section}.limits {limit.name}: `match: [{', '.join(limit.match)}]` matches no gateway key, so it caps "
                       f"nothing; a key's name is its `name:` or its variable's (these keys: {', '.join(names)})")
    return out
