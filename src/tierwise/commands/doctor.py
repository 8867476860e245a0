"""`tierwise doctor`: check the config and reach every provider; say what is missing and how to fix it."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tierwise.commands._common import config_explicit, config_option
from tierwise.endpoint_url import endpoint

if TYPE_CHECKING:
    from tierwise.config import Config, ProviderConfig


def unset_client_keys(cfg: Config) -> str | None:
    """What is wrong when server.api_keys_env names variables that are not set (None when nothing is):
    with none of them set the gateway refuses every request (401), and the operator should hear why."""
    import os

    names = [k if isinstance(k, str) else k.env for k in cfg.server.api_keys_env]
    unset = [n for n in names if not os.environ.get(n)]
    if not unset:
        return None
    if len(unset) == len(names):
        return (f"server.api_keys_env: {', '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set: every "
                "request will be refused with 401. Fix: export the key(s) before `tierwise serve`")
    return f"server.api_keys_env: {', '.join(unset)} not set: clients holding those keys will get 401"


def unset_provider_keys(cfg: Config, named: set[str] | None = None) -> list[str]:
    """One line per provider whose `api_key_env` is not set: every call to its models fails (routes
    fall back, or answer 503), which `serve` should say before the first request does."""
    out = []
    for name, p in cfg.providers.items():
        if p.api_key_env and not p.api_key():
            if named is not None:  # (the caller's: the providers named, for route_map.without_an_answer)
                named.add(name)
            models = ", ".join(m for m, mc in cfg.models.items() if mc.provider == name) or "no models"
            out.append(f"provider {name}: {p.api_key_env} is not set: calls to its models ({models}) will fail "
                       f"until it is. Fix: export {p.api_key_env}=... before `tierwise serve`")
    return out


def silent_local_servers(cfg: Config, named: set[str] | None = None) -> list[str]:
    """One line per local provider on this machine (a loopback base_url) where nothing accepts a TCP
    connection: the first requests to its models would fail (or fall back) with no word at start, the
    usual first run being `tierwise serve` before `ollama serve`. Loopback only, so a start never waits on
    a remote host; a refused loopback connection answers at once."""
    import ipaddress

    from tierwise.server.health import _address
    from tierwise.starter import port_open, start_hint

    out = []
    for name, p in cfg.providers.items():
        addr = _address(p.base_url) if p.locality == "local" else None
        if addr is None:
            continue
        host, port = addr
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback or port_open(port, host, timeout=0.3):
            continue
        if named is not None:
            named.add(name)
        models = ", ".join(m for m, mc in cfg.models.items() if mc.provider == name) or "no models"
        out.append(f"provider {name}: nothing listens at {host}:{port} yet: calls to its models ({models}) will "
                   f"fail until the server starts. Fix: {start_hint(p.base_url)}"
                   " (`tierwise doctor` checks it; `tierwise init --force --local URL` points the config at another)")
    return out


EMPTY_CONFIG = ("defines no models and no routes: every request would be refused. Fix: add providers, models and "
                "routes, or `tierwise init --force` writes a starter config")


def open_to_the_network(cfg: Config, host: str | None = None) -> str | None:
    """What is wrong when the gateway listens beyond this machine with no client keys: anyone who can
    reach the port spends the provider keys it holds (None when it listens on loopback or has keys)."""
    import ipaddress

    h = (host or cfg.server.host).strip("[]")
    if cfg.server.api_keys_env or h == "localhost":
        return None
    try:
        if ipaddress.ip_address(h).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to any interface
    return (f"listening on {h}, beyond this machine, with no client keys: anyone who can reach the port can "
            "spend the provider keys this gateway holds. Fix: set server.api_keys_env (docs/security/reach.md), "
            "or listen on 127.0.0.1")


def _runs_code(cfg: Config) -> bool:
    """Whether a route's verifiers run code in the sandbox (python_code with run or tests)."""
    from pydantic import BaseModel

    def walk(node: Any) -> bool:
        if isinstance(node, BaseModel):
            node = node.model_dump()
        if isinstance(node, dict):
            if node.get("type") == "python_code" and (node.get("run") or node.get("tests") is not None):
                return True
            node = list(node.values())
        return isinstance(node, list) and any(walk(v) for v in node)

    return walk(list(cfg.routes.values()))


async def _read_at_most(resp: Any, cap: int) -> bytes | None:
    """The body (inflated, if compressed), or None once it passes `cap` bytes: the server is not trusted to
    stop, and a gzip bomb is small on the wire."""
    parts, size = [], 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def _other_api(resp: Any, kind: str) -> str | None:
    """The other API's kind when an error answer is shaped as its (`providers.api_shape`)."""
    import json

    from tierwise.providers.api_shape import other_api

    raw = await _read_at_most(resp, 64 * 1024)
    try:
        return other_api(kind, json.loads(raw)) if raw else None
    except ValueError:
        return None


def _base_url_variant(kind: str, base_url: str) -> str | None:
    """The base_url a common slip was meant to be: an OpenAI-compatible one without its `/v1` (Ollama, vLLM
    and LM Studio serve only under it) or with the endpoint pasted on, an Anthropic one with `/v1` on
    (the gateway adds it)."""
    base = base_url.rstrip("/")
    if kind == "openai":
        base = base.removesuffix("/chat/completions").removesuffix("/completions")
        alt = base if base.endswith("/v1") else base + "/v1"
    else:
        alt = base.removesuffix("/messages").removesuffix("/v1")
    return alt if alt != base_url.rstrip("/") else None


async def _answering_base_url(session: Any, p: ProviderConfig, headers: dict[str, str]) -> str | None:
    """After a 404 on the model list: the variant of base_url whose model list answers, if one does."""
    alt = _base_url_variant(p.kind, p.base_url)
    if alt is None:
        return None
    url = endpoint(alt, "/models" if p.kind == "openai" else "/v1/models")
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as r:
            return alt if r.status < 300 else None
    except (OSError, TimeoutError):
        return None


async def probe(name: str, p: ProviderConfig, listed: list[dict[str, Any]] | None = None) -> tuple[bool, str]:
    """Reach a provider's model list; `listed` gets its entries (each a dict) when it answers one."""
    import json

    import aiohttp

    from tierwise.commands.doctor_models import serves_own_api
    from tierwise.providers.api_shape import hint, other_api
    from tierwise.starter import MODEL_LIST_BYTES

    key = p.api_key()
    if p.api_key_env and not key:
        return False, f"no API key: export {p.api_key_env}=... (requests to {name} will fail over to other targets)"
    headers = {}
    if p.kind == "openai":
        url = endpoint(p.base_url, "/models")
        if key:
            headers["authorization"] = f"Bearer {key}"
    else:
        url = endpoint(p.base_url, "/v1/models?limit=1000")  # (20 a page by default)
        headers["anthropic-version"] = "2023-06-01"
        if key:
            headers["x-api-key"] = key
    timeout = aiohttp.ClientTimeout(total=min(5.0, p.timeouts.connect + 3), sock_connect=p.timeouts.connect)
    try:
        # No redirects: the key headers would follow to the host the server names (so does the gateway).
        async with aiohttp.ClientSession(timeout=timeout) as s, \
                s.get(url, headers=headers, allow_redirects=False) as r:
            if 300 <= r.status < 400:
                return False, (f"{url} answered with a redirect (HTTP {r.status}), which the gateway does not "
                               "follow: set base_url to where it leads")
            if r.status >= 400 and (other := await _other_api(r, p.kind)) is not None \
                    and not await serves_own_api(s, p, headers):  # (before a key's refusal)
                return False, f"{url} answered HTTP {r.status}: {hint(p.kind, other)}"
            if r.status in (401, 403):
                return False, f"reached, but the key in {p.api_key_env or '(none)'} was refused (HTTP {r.status})"
            if r.status == 404 and (alt := await _answering_base_url(s, p, headers)):
                call = "chat/completions" if p.kind == "openai" else "v1/messages"
                return False, (f"{url} answered HTTP 404, but {alt} answers: set base_url: {alt} (every call now "
                               f"goes to {endpoint(p.base_url, '/' + call)} and fails)")
            if r.status >= 400:
                return True, f"reached (HTTP {r.status} on {url}; chat may still work)"
            raw = await _read_at_most(r, MODEL_LIST_BYTES)
            if raw is None:
                return True, f"reached; its model list is larger than {MODEL_LIST_BYTES:,} bytes: not read"
            try:
                data = json.loads(raw)
                if (other := other_api(p.kind, data)) is not None and not await serves_own_api(s, p, headers):
                    return False, f"{url} answered a model list: {hint(p.kind, other)}"
                entries = data.get("data", []) if isinstance(data, dict) else []
                entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
                n = len(entries)
                if listed is not None and not (isinstance(data, dict) and data.get("has_more")):  # (a part: not
                    listed.extend(entries)  # checked against)
            except ValueError:
                n = 0
            return True, f"reached; {n} model(s) listed"
    except (aiohttp.ClientConnectorError, OSError):
        from tierwise.starter import start_hint

        advice = start_hint(p.base_url) if p.locality == "local" else "check the URL and your network"
        return False, f"cannot connect to {p.base_url}: {advice}"
    except TimeoutError:
        return False, f"no answer from {p.base_url} within the timeout"


def sandbox_report(cfg: Config) -> tuple[bool, str]:
    """The code sandbox: what is in force here, and how to install bubblewrap where it is missing."""
    from tierwise import sandbox
    from tierwise.sandbox import backend, identity

    st = sandbox.status()
    if st.strong:
        groups = (f"; no cgroup per run ({st.cgroup_problem})" if st.cgroup_problem else "")
        if st.run_as is not None:
            groups += f"; the gateway is root: code runs as {_run_uids(identity, st.run_as.uid)} outside"
        elif st.run_as_problem:
            groups += f"; code runs as ROOT outside its sandbox (allow_root_outside is set: {st.run_as_problem})"
        return True, f"sandbox: {st.version}; layers in force: {', '.join(st.layers)}{groups}"
    if cfg.sandbox.allow_weak:
        if (why := backend.weak_problem()) is not None:
            return False, f"sandbox: WEAK sandbox refused: {why}. python_code verifiers with run/tests will refuse to start"
        user = backend.weak_run_as()
        who = _run_uids(identity, user.uid) if user is not None else backend.runs_as(None)
        from tierwise.sandbox import cgroup, landlock, weak

        lock = "; Landlock: it opens only the system's libraries, the interpreter and its folder" if landlock.abi() \
            else ""
        place = f"its folder on {weak.folder_root()}, " + ("counted in its memory cgroup" if cgroup.per_run_memory()
                                                            else "a small tmpfs the runs share (no memory cgroup)")
        read_only = backend.weak_read_only_host()
        pids = (", a PID namespace of its own" if backend.weak_pid_namespace() else
                ", the host's PIDs in sight (this kernel refuses it a PID namespace)" + _hidepid()) if read_only else ""
        files = ("the host read-only but for the run's folder, only the system's folders in sight" + pids + lock
                 if read_only else f"{lock[2:]} ({place}; stat of a guessed path answers" + _hidepid()
                 + ("; a world-writable file's times can be set to now" if user is not None else "") + ")")
        return True, (f"sandbox: WEAK (allow_weak is set; rlimits, seccomp where libseccomp is installed and an audit "
                      f"hook; {files}): code runs as {who} outside: {st.problem}")
    return False, f"sandbox: {st.problem}. python_code verifiers with run/tests will refuse to start"


def _hidepid() -> str:
    """Where a weak run sees the host's PIDs: whether /proc shows it other users' processes (tierwise.sandbox.pidns)."""
    from tierwise.sandbox import pidns

    return pidns.HOST_IDS + ("" if pidns.proc_hides_processes() else
                             "; /proc/<pid> tells it the host's processes: mount /proc with hidepid=invisible to hide them")


def _run_uids(identity: Any, first: int) -> str:
    """The uids a root gateway's runs are, and whether they share one."""
    span = identity.settings.run_as_range
    if span is not None:
        return f"a uid of its own per run in progress ({span[0]}-{span[1]})"
    return f"uid {first} (every run the same user: set sandbox.run_as_range to give each run one of its own)"


def ledger_report(cfg: Config) -> tuple[bool, str] | None:
    """Can the gateway open its ledger? `serve` stops at start when it cannot (a read-only folder, a path that is a
    folder, a file on the way); doctor says so first. A ledger not there yet is only probed: nothing is created."""
    import tempfile

    from tierwise.errors import ConfigError
    from tierwise.ledger.store import Ledger

    if not cfg.ledger.enabled:
        return None
    path = Path(cfg.ledger.resolved_path(cfg.base_dir))
    fix = "Fix: point ledger.path at a new file in a writable folder (or ledger.enabled: false)"
    if path.exists():
        try:
            Ledger.open(str(path)).close()  # no journal: a running gateway's journal is its own to replay
        except ConfigError as e:
            return False, f"ledger: {e.message.removeprefix('ledger.path: ')}"
        return True, f"ledger: {path}"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return False, f"ledger: cannot create {path}: {folder} is a file, not a folder. {fix}"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return False, f"ledger: cannot create {path} in {folder} ({e.strerror}). {fix}"
    return True, f"ledger: {path} (written from the first request)"


def unpriced_models(cfg: Config) -> list[str]:
    """Remote models with no price: neither in the config nor in the price data (genai-prices)."""
    from tierwise.commands.doctor_models import unpriced_names

    return [f"model {name} ({cfg.models[name].model} on {cfg.models[name].provider}) is remote and has no known "
            "price: its requests are counted as unknown cost, never as savings. Fix: give it `price: {input: USD, "
            "output: USD}` (per million tokens) in the config" for name in unpriced_names(cfg)]


def redis_users(cfg: Config) -> dict[str, list[str]]:
    """Redis URL -> the parts of the config that need it (budgets and rate limits, dispatch, cache, approvals,
    the blackboard's own, the dashboard's worker presence)."""
    out: dict[str, list[str]] = {}
    if cfg.budgets is not None and cfg.budgets.store.backend == "redis":  # rate limits use the same store
        out.setdefault(cfg.budgets.store.redis_url, []).append("budgets.store")
    if cfg.dispatch is not None:
        out.setdefault(cfg.dispatch.redis_url, []).append("dispatch")
    if cfg.cache.enabled and cfg.cache.backend == "redis":
        out.setdefault(cfg.cache.redis_url, []).append("cache")
    if (approvals := approvals_redis_url(cfg)) is not None:
        out.setdefault(approvals, []).append("approvals.store")
    if cfg.blackboard.enabled is not False and cfg.blackboard.redis_url:  # (unset: one of the above, or none)
        out.setdefault(cfg.blackboard.redis_url, []).append("blackboard")
    if (presence := cfg.observability.dashboard.presence_redis_url) is not None:
        out.setdefault(presence, []).append("observability.dashboard.presence")
    return out


def approvals_redis_url(cfg: Config) -> str | None:
    """The Redis the approvals use (as gateway.py resolves it), or None."""
    if cfg.approvals is None or cfg.approvals.store.backend != "redis":
        return None
    fallback = cfg.budgets.store.redis_url if cfg.budgets is not None else None
    return cfg.approvals.store.redis_url or fallback or "redis://127.0.0.1:6379/0"


def cache_shares_redis(cfg: Config) -> str | None:
    """A warning when the Redis answer cache is on the same Redis server as state that must not be evicted or
    refused (budgets and rate limits, dispatch, approvals): `maxmemory` is the whole server's. Measured
    (bench/redis_shared_memory.py): one client asking distinct questions filled an 8 MB Redis with answers; with
    `allkeys-lru` the budget counted $1.69 of $7.51 spent (its counters evicted); the cache's own `max_bytes`
    (kept on Redis since session 23) set under what the server spares prevents it."""
    if not (cfg.cache.enabled and cfg.cache.backend == "redis"):
        return None
    others: list[tuple[str, str]] = []
    if cfg.budgets is not None and cfg.budgets.store.backend == "redis":
        others.append(("budgets.store", cfg.budgets.store.redis_url))
    if cfg.dispatch is not None:
        others.append(("dispatch", cfg.dispatch.redis_url))
    if (approvals := approvals_redis_url(cfg)) is not None:
        others.append(("approvals.store", approvals))
    where = redis_where(cfg.cache.redis_url)
    shared = [name for name, url in others if redis_where(url) == where]
    if not shared:
        return None
    mib = cfg.cache.max_bytes / 2**20
    return (f"the Redis answer cache is on the same Redis server ({where}) as {', '.join(shared)}: clients' "
            f"answers fill up to cache.max_bytes ({mib:g} MiB); where that is more than the server's maxmemory "
            "can spare, Redis refuses their writes (noeviction: budgeted requests get 503) or evicts their keys "
            "(an LRU policy: budget counters lost, spend under-counted). Keep cache.max_bytes well under what the "
            "server can spare, or give the cache a Redis server of its own (docs/cache.md)")


def redis_where(url: str) -> str:
    """host:port (or the socket path) of a Redis URL: never its user or password."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return u.path if u.scheme == "unix" else f"{u.hostname}:{u.port or 6379}"


async def ping_redis(url: str, parts: list[str]) -> tuple[bool, str]:
    from tierwise.commands.redis_problems import (
        answered_with_error,
        explain,
        ping,
        refused_credentials,
        words,
    )

    err = await ping(url, timeout=2.0)
    if err is None:
        return True, "reached"
    answered = refused_credentials(err) or answered_with_error(err)
    said = explain(err, parts) if answered else f"unreachable ({words(err)})"
    return False, f"{said}: every request these parts cover will fail"


# What must be counted exactly lives in these parts' keys: an evicted key is spend forgotten, a task or an approval lost.
MUST_NOT_EVICT = ("budgets.store", "dispatch", "approvals.store")


async def evicting_policy(url: str) -> str | None:
    """The server's eviction policy when it has a `maxmemory` and evicts (None when it does not, or when CONFIG
    is not allowed to this user: a managed Redis, an ACL without it)."""
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True)
    try:
        got = await client.config_get("maxmemory*")
    except Exception:  # noqa: BLE001 - not ours to know
        return None
    finally:
        await client.aclose()
    limit = str(got.get("maxmemory", "0") or "0")
    policy = str(got.get("maxmemory-policy", "noeviction"))
    if not limit.isdecimal() or int(limit) == 0 or policy == "noeviction":
        return None  # no maxmemory, or a look-alike answering what no Redis would: nothing to say
    return re.sub(r"[^a-z0-9_-]", "", policy.lower())[:40] or "unknown"  # printed: only a policy word


def built_routes(cfg: Config) -> None:
    """Build the gateway's routes as `serve` does (no ledger, nothing started), so what only building
    finds (an ensemble file that is not there, a sandbox a code verifier needs) fails here, not at start.
    A worker's config (`dispatch.worker`) is built as `tierwise worker` builds it, with its capabilities."""
    from tierwise.errors import ConfigError
    from tierwise.gateway import Gateway

    worker = cfg.dispatch.worker if cfg.dispatch is not None else None
    if worker is not None:
        from tierwise.dispatch.serving import add_ensemble_routes, check_targets

        problems = check_targets(cfg, worker)
        if problems:
            raise ConfigError(f"{cfg.source}: dispatch.worker.capabilities: " + "; ".join(problems))
        cfg = cfg.model_copy(deep=True)  # the capability routes are the worker's, not the config's to count
        add_ensemble_routes(cfg, worker)
    try:
        Gateway(cfg, ledger=None)
    except ConfigError as e:
        message = e.message
        if worker is not None:
            from tierwise.commands.worker import _as_written

            message = _as_written(message, worker.capabilities)
        raise ConfigError(f"{cfg.source}: {message}") from None


@click.command("doctor")
@config_option
def command(config_path: str) -> None:
    """Check the config, reach each provider, and say what to fix."""
    from tierwise.commands.doctor_dispatch import unlisted_caller
    from tierwise.config import load_config, parse_config
    from tierwise.errors import ConfigError
    from tierwise.starter import port_open, starter_yaml

    ok = True
    warned: list[str] = []

    def say(line: str) -> None:
        warned.extend([line] if line.startswith("! ") else [])
        click.echo(line)

    if not Path(config_path).exists() and config_explicit():
        say(f"✗ config: {config_path} does not exist (the path was given with --config or "
            "$TIERWISE_CONFIG). Fix the path, or `tierwise init --path ...` to write one.")
        sys.exit(1)
    if not Path(config_path).exists():
        say(f"✗ config: {config_path} not found. Fix: `tierwise init` writes a starter config.")
        say("  (checking the built-in starter config instead)")
        cfg: Config = parse_config(starter_yaml(), file="<starter config>")
        ok = False
    else:
        try:
            cfg = load_config(config_path)
        except ConfigError as e:
            say(f"✗ config: {e.message}")
            sys.exit(1)
        try:
            from tierwise.commands.serve import slow_start

            if (note := slow_start(cfg)) is not None:  # ~30 s of silence on a busy machine, before
                click.echo(f"  ({note})")
            built_routes(cfg)
            if not cfg.models and not cfg.routes:  # an empty file is a valid config that serves nothing
                raise ConfigError(EMPTY_CONFIG, file=config_path)
            say(f"✓ config: {config_path} is valid ({len(cfg.providers)} providers, "
                f"{len(cfg.models)} models, {len(cfg.routes)} routes)")
        except ConfigError as e:  # the file parses, so the other checks still say what they can
            say(f"✗ config: {e.message}")
            ok = False

    lists: dict[str, list[dict[str, Any]]] = {n: [] for n in cfg.providers}

    async def run_all() -> list[tuple[str, ProviderConfig, bool, str]]:
        res = await asyncio.gather(*(probe(n, p, lists[n]) for n, p in cfg.providers.items()))
        return [(n, p, r[0], r[1]) for (n, p), r in zip(cfg.providers.items(), res, strict=True)]

    keys_problem = unset_client_keys(cfg)
    if keys_problem:
        every = "every request" in keys_problem
        say(f"{'✗' if every else '!'} {keys_problem}")
        ok &= not every

    if (exposed := open_to_the_network(cfg)) is not None:
        say(f"! {exposed}")

    good, msg = sandbox_report(cfg)
    say(f"{'✓' if good else '✗'} {msg}")
    ok &= good or not _runs_code(cfg)

    if (ledger := ledger_report(cfg)) is not None:
        say(f"{'✓' if ledger[0] else '✗'} {ledger[1]}")
        ok &= ledger[0]

    from tierwise.commands.doctor_models import (
        blind_to_unpriced,
        local_model_mismatches,
        unlisted_remote_models,
    )
    from tierwise.commands.terminal_text import inert
    from tierwise.secret_scrub import register_config, scrub

    register_config(cfg)  # a base_url's `user:password@` must not reach the terminal (or a pasted bug report)
    results = asyncio.run(run_all())
    reachable = set()
    for name, p, good, msg in results:
        say(f"{'✓' if good else '✗'} provider {name} ({p.kind}, {p.locality}): {scrub(msg)}")
        if good:
            reachable.add(name)
        ok &= good
        if good:  # model ids come from the server: control characters shown
            check = local_model_mismatches if p.locality == "local" else unlisted_remote_models
            for warning in check(cfg, name, lists[name]):
                say(f"! {inert(warning)}")
    for url, users in redis_users(cfg).items():
        good, msg = asyncio.run(ping_redis(url, users))
        say(f"{'✓' if good else '✗'} redis {redis_where(url)} ({', '.join(users)}): {msg}")
        ok &= good
        counted = [u for u in users if u in MUST_NOT_EVICT]
        if good and counted and (policy := asyncio.run(evicting_policy(url))) is not None:
            say(f"! redis {redis_where(url)} ({', '.join(counted)}) evicts keys at its maxmemory "
                f"(maxmemory-policy {policy}): an evicted budget counter is spend forgotten (a $2 budget paid "
                "$2.31 in bench/RESULTS.md); set `maxmemory-policy noeviction` (docs/budgets.md, Limits)")
    if (shared := cache_shares_redis(cfg)) is not None:
        say(f"! {shared}")
    for unlisted in asyncio.run(unlisted_caller(cfg)) if cfg.dispatch is not None else []:
        say(f"! {inert(unlisted)}")
    for mname, m in cfg.models.items():
        if m.provider not in reachable:
            say(f"  model {mname} ({m.model}) is unavailable until provider {m.provider} is fixed")
    from tierwise.commands.privacy_checks import (
        local_only_without_local,
        remote_marked_local,
        resolved_public,
        unmarked_local_providers,
    )

    for warning in remote_marked_local(cfg, resolved_public) + unmarked_local_providers(cfg) + unpriced_models(cfg) + \
            blind_to_unpriced(cfg) + local_only_without_local(cfg):
        say(f"! {warning}")
    if cfg.budgets is not None and (split := cfg.budgets.per_process_ensemble_warning()) is not None:
        say(f"! {split}")
    from tierwise.budgets.key_match import unmatched_key_limits

    for warning in unmatched_key_limits(cfg):
        say(f"! {warning}")
    from tierwise.commands.doctor_ensembles import script_env_secrets
    from tierwise.commands.doctor_tracing import silent_tracing_endpoint

    for warning in [w for w in (silent_tracing_endpoint(cfg),) if w is not None] + script_env_secrets(cfg):
        say(f"! {warning}")
    from tierwise.commands.doctor_models import (
        claude_code_windows,
        coding_agent_secrets,
        downgrade_too_small,
        downgrade_without_local,
    )

    for warning in claude_code_windows(cfg, lists) + coding_agent_secrets(cfg) + downgrade_without_local(cfg) + \
            downgrade_too_small(cfg):
        say(f"! {warning}")
    if port_open(cfg.server.port, cfg.server.host if cfg.server.host != "0.0.0.0" else "127.0.0.1"):
        say(f"! port {cfg.server.port} is already in use (a running gateway?): "
            "`tierwise serve --port N` picks another")
    if not reachable and cfg.providers:
        say("Nothing is reachable yet: the gateway will start, but every request will fail until a provider "
            "is up.")
    n = len(warned)  # "All good." under warnings read as nothing to do (a model "every call would be refused")
    click.echo("Some checks failed; see the lines marked ✗ above." if not ok else "All good." if not n else
               f"No check failed, but {n} warning(s) above (marked !) say what may still go wrong.")
    sys.exit(0 if ok else 1)
