"""`tierwise claude`: run the Claude Code CLI against the gateway (like `ccr code`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tierwise.commands._common import config_option, load_or_exit

if TYPE_CHECKING:
    from tierwise.config import Config

# Where `scripts/install-claude-code.sh` puts the CLI, under a checkout's root: an editable install (the
# README's quick start) run from another folder finds it there too. Not the current folder's: `tierwise claude`
# run inside a project just cloned would run whatever that project ships there (review27b).
# `serve` listens before its start-up ends (the privacy detectors' NER model, the ledger), so a client may wait in
# its backlog; before session 32 a wait of over 3 s (a loaded machine) read "no gateway answers ... start it first".
START_WAIT_S = 60.0

_TOOLS_BIN = os.path.join(".tools", "claude-code", "node_modules", ".bin")


def checkout_root(here: Path) -> Path | None:
    """The checkout this module runs from (`<root>/src/tierwise/commands/claude.py`), None for an installed wheel."""
    parents = here.parents
    return parents[3] if len(parents) > 3 and parents[2].name == "src" and parents[1].name == "tierwise" else None


CHECKOUT_ROOT = checkout_root(Path(__file__).resolve())

# Claude Code refuses to start without some key; an open gateway accepts any.
PLACEHOLDER_KEY = "tierwise"


def find_claude() -> str | None:
    """`claude` on PATH, else in the checkout tierwise runs from (never the current folder's)."""
    found = shutil.which("claude")
    if found is None and CHECKOUT_ROOT is not None:
        found = shutil.which("claude", path=str(CHECKOUT_ROOT / _TOOLS_BIN))
    return found


def gateway_key(cfg: Config) -> str | None:
    """The key Claude Code must send: the value of the first variable of `server.api_keys_env` that
    is set. Exits with the variables to set when the gateway wants a key and none is set (Claude
    Code would otherwise retry its 401s in silence). None when the gateway takes no keys."""
    from tierwise.config import ClientKey

    names = [k.env if isinstance(k, ClientKey) else k for k in cfg.server.api_keys_env]
    if not names:
        return None
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise click.ClickException(
        f"the gateway wants a client key (server.api_keys_env: {', '.join(names)}) and none of these "
        "variables is set here: export one, or Claude Code is refused with 401")


def gateway_secrets(cfg: Config) -> set[str]:
    """What the gateway of `cfg` holds and Claude Code needs none of: its provider keys, gateway, admin and viewer
    keys, the privacy mapping key, URL passwords and secret headers (secret_scrub.config_secrets, without the
    variables it holds only for their names: a user's GITHUB_TOKEN stays for Claude Code's own tools)."""
    from tierwise.secret_scrub import config_secrets

    return config_secrets(cfg, environment=False)


def claude_env(base_url: str, *, haiku_model: str | None, subagent_model: str | None,
               key: str | None = None, withheld: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """Claude Code's environment. `key`: the gateway's client key, which replaces any
    ANTHROPIC_API_KEY (that one is the upstream key the gateway holds: a keyed gateway refuses it,
    and the client needs no upstream key), given as ANTHROPIC_AUTH_TOKEN like the placeholder below. Without one, Claude Code gets no key of the user's at all, on this
    machine or another: the gateway forwards no client key, so a provider key there only reaches Claude Code's
    shell tool (`env` prints it into the conversation, upstream and the ledger) or, for a gateway on another host,
    goes there in clear text over http. It gets the placeholder (or TIERWISE_KEY) as ANTHROPIC_AUTH_TOKEN:
    checked with Claude Code 2.1.197, a whole session (tools, WebFetch, a subagent) routes as with the user's key,
    and an unknown ANTHROPIC_API_KEY would make its interactive start ask "Do you want to use this API key?"
    with "No" preselected (newuser38b). A variable whose value holds one of `withheld` (`gateway_secrets`) is
    left out, for the same shell-tool reason, in any form it is written in (a Redis URL percent-encodes its
    password, a Basic credential is base64; review38c)."""
    from tierwise.secret_scrub import finder

    holds = finder(withheld)
    env = {k: v for k, v in os.environ.items() if not holds(v)}
    env["ANTHROPIC_BASE_URL"] = base_url
    env.pop("ANTHROPIC_API_KEY", None)
    env["ANTHROPIC_AUTH_TOKEN"] = key if key is not None else os.environ.get("TIERWISE_KEY", PLACEHOLDER_KEY)
    if haiku_model:
        env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] = haiku_model
    if subagent_model:
        env["CLAUDE_CODE_SUBAGENT_MODEL"] = subagent_model
    env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    return env


def _check_gateway(url: str, config_path: str, key: str | None = None) -> None:
    """Stop with a clear line when no gateway answers at `url`, or when one answers but every route it has
    is down (no model it can reach has its key set, its server up or its breaker closed): Claude Code
    would otherwise retry the connection, or the 502/503s, for minutes with nothing on the screen."""
    import json
    import urllib.error
    import urllib.request

    from tierwise import no_redirects
    from tierwise.commands._common import redirect_refused

    headers = {"authorization": f"Bearer {key}"} if key else {}
    deadline, told = time.monotonic() + START_WAIT_S, False
    while True:
        try:
            req = urllib.request.Request(url.rstrip("/") + "/health", headers=headers)
            with no_redirects.urlopen(req, timeout=3) as r:  # the key goes to this address only
                body = r.read(1 << 20)
            break
        except urllib.error.HTTPError as e:  # it answered (whatever it said): a gateway is there
            if no_redirects.is_redirect(e.code):  # (Claude Code would send the key on: say so instead)
                raise click.ClickException(redirect_refused(url, e.code)) from None
            return
        except (urllib.error.URLError, OSError, ValueError) as e:
            why = getattr(e, "reason", e)
            if not isinstance(why, TimeoutError):
                raise click.ClickException(
                    f"no gateway answers at {url} ({type(why).__name__}): start it first (`tierwise serve -c "
                    f"{config_path}`), or pass --url") from None
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"the gateway at {url} took the connection but did not answer /health in {START_WAIT_S:g} s: "
                    f"is it stuck starting? (`tierwise serve -c {config_path}` prints `serving on` and then loads "
                    "the rest)") from None
            if not told:
                click.echo(f"tierwise: waiting for the gateway at {url} to finish starting "
                           f"(it took the connection, no answer yet; up to {START_WAIT_S:g} s)", err=True)
                told = True
    try:
        health = json.loads(body)
    except ValueError:  # something else answers there: let Claude Code try it
        return
    if key and _refuses(url, headers):
        raise click.ClickException(
            f"the gateway at {url} refuses the client key set here (HTTP 401): Claude Code would get only 401s. "
            "Export the same value in the shell that runs `tierwise serve` (its `server.api_keys_env` variables are "
            "read when it starts), or here the one it was started with")
    if isinstance(health, dict) and health.get("status") == "down":
        routes = health.get("routes")
        models = sorted({str(m) for r in (routes.values() if isinstance(routes, dict) else ()) if isinstance(r, dict)
                         for m in r.get("unavailable") or [] if isinstance(r.get("unavailable"), list)})
        what = f" (unavailable: {', '.join(models)})" if models else ""
        raise click.ClickException(
            f"the gateway at {url} answers, but every route is down{what}: Claude Code would get only errors. "
            f"`tierwise doctor -c {config_path}` says what to fix (a provider key not exported where the gateway "
            "runs, a local model server not started)")


def _check_url(url: str) -> None:
    """`--url` must be an http(s) address: `--url $URL -- -p hi` with URL unset made `--` the URL, and the user read
    "no gateway answers at -- (ValueError)" (newuser36)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise click.BadParameter(f"{url!r} is not an http(s) URL such as http://127.0.0.1:4000 (an empty shell "
                                 "variable after --url makes the next argument its value)", param_hint="--url")


def _refuses(url: str, headers: dict[str, str]) -> bool:
    """Does the gateway answer 401 to this key? (`/health` answers any caller; `/v1/models` checks the key.)"""
    import urllib.error
    import urllib.request

    from tierwise import no_redirects

    try:
        with no_redirects.urlopen(urllib.request.Request(url.rstrip("/") + "/v1/models", headers=headers), timeout=3):
            return False
    except urllib.error.HTTPError as e:
        return e.code == 401
    except (urllib.error.URLError, OSError, ValueError):
        return False  # not a question this check can settle: let Claude Code try


def unknown_name_warning(cfg: Config, option: str, name: str | None) -> str | None:
    """A warning for a --haiku-model/--subagent-model value the config has no route or model of: the gateway would
    send its requests to the default route (or answer 404), and Claude Code would show nothing of it."""
    import difflib
    from fnmatch import fnmatchcase

    if not name or name in cfg.routes or name in cfg.models:
        return None
    if any(fnmatchcase(name, r) for r in cfg.routes if any(c in r for c in "*?[")):
        return None  # a pattern route (`claude-*`) takes it, as the gateway does
    default = cfg.server.default_route
    if default and _rule_takes(cfg.routes.get(default), name):
        return None  # the default route's rules route it (examples/claude-code.yaml's `match: {model: local}`)
    known = sorted({*cfg.routes, *cfg.models})
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean `{near[0]}`? " if near else ""
    where = f"its requests go to the default route `{default}`" if default else "the gateway answers its requests 404"
    return (f"{option} {name!r} is not a route or model of the config: {where}; {hint}"
            f"known: {', '.join(known)}")


def _rule_takes(route: object, name: str) -> bool:
    """Does a rule of this (`policy: rules`) route match every request for `name` by its `model` glob alone?"""
    from fnmatch import fnmatchcase

    from tierwise.policies.rules import RulesConfig

    if not isinstance(route, RulesConfig):
        return False
    for rule in route.rules:
        m = rule.match
        if m.model is not None and m.model_fields_set <= {"model"}:
            globs = [m.model] if isinstance(m.model, str) else m.model
            if any(fnmatchcase(name, g) for g in globs):
                return True
    return False


@click.command("claude", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@config_option
@click.option("--url", default=None, help="Gateway URL (default: from the config's server section).")
@click.option("--haiku-model", default=None, help="Model/route for Claude Code's background (haiku) work.")
@click.option("--subagent-model", default=None, help="Model/route for Claude Code subagents.")
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
def command(config_path: str, url: str | None, haiku_model: str | None, subagent_model: str | None,
            claude_args: tuple[str, ...]) -> None:
    """Launch `claude` with ANTHROPIC_BASE_URL pointing at the gateway (and its client key, when it
    wants one); extra arguments go to claude."""
    if url is not None:
        _check_url(url)
    cfg = load_or_exit(config_path, allow_starter=True)
    if url is None:
        host = "127.0.0.1" if cfg.server.host in ("0.0.0.0", "::") else cfg.server.host
        url = f"http://{host}:{cfg.server.port}"
    for option, name in (("--haiku-model", haiku_model), ("--subagent-model", subagent_model)):
        warning = unknown_name_warning(cfg, option, name)
        if warning:
            click.echo(f"tierwise: warning: {warning}", err=True)
    key = gateway_key(cfg)
    _check_gateway(url, config_path, key)
    exe = find_claude()
    if exe is None:
        raise click.ClickException(
            "the `claude` CLI is not installed (not on PATH, nor in .tools/claude-code of tierwise's checkout; "
            "the current folder's is not run): npm install -g @anthropic-ai/claude-code, or `bash scripts/install-claude-code.sh` in "
            "tierwise's checkout")
    env = claude_env(url, haiku_model=haiku_model, subagent_model=subagent_model, key=key,
                     withheld=gateway_secrets(cfg) - {key or ""})
    # This process waits as Claude Code's parent: its /proc/<pid>/environ (the whole environment it started with,
    # every key `claude_env` leaves out) and its memory were its user's to read, and Claude Code's shell tool runs as
    # that user (`cat /proc/$PPID/environ`; review38c). Not dumpable, they are root's (Claude Code, after its exec,
    # is dumpable as before).
    from tierwise.sandbox.weak import not_dumpable

    not_dumpable()
    sys.exit(subprocess.call([exe, *claude_args], env=env))
