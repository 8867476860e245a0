"""`tierwise doctor`'s checks of the config's models: ids against what each provider's model list says it serves, and
local context windows against the Claude Code turns rules send them."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `tierwise --help` imports every command module: the config's pydantic models stay unloaded
    from tierwise.config import Config, ProviderConfig


def local_model_mismatches(cfg: Config, name: str, listed: list[dict[str, Any]]) -> list[str]:
    """What a local server's model list says the config gets wrong: a model id it does not serve
    (Ollama, vLLM, LM Studio answer 404 on every call), or a `context_window` larger than what
    llama.cpp holds per request (`meta.n_ctx`: every longer prompt is a refused call)."""
    out = []
    ids = {str(e.get("id")) for e in listed}
    llama = [e for e in listed if e.get("owned_by") == "llamacpp"]  # llama.cpp serves its model under any id
    for mname, m in cfg.models.items():
        if m.provider != name:
            continue
        if llama:
            entry = next((e for e in llama if e.get("id") == m.model), llama[0] if len(llama) == 1 else None)
            meta = entry.get("meta") if entry else None
            n_ctx = meta.get("n_ctx") if isinstance(meta, dict) else None
            if isinstance(n_ctx, int) and m.context_window and m.context_window > n_ctx:
                out.append(f"model {mname}: context_window {m.context_window:,} but the llama.cpp server of "
                           f"provider {name} holds {n_ctx:,} tokens per request (-c divided by its slots): a longer "
                           f"prompt is a refused call each time. Fix: context_window: {n_ctx}, or start "
                           "llama-server with a larger -c")
            elif isinstance(n_ctx, int) and m.context_window and m.context_window < n_ctx:
                out.append(f"model {mname}: context_window {m.context_window:,} but the llama.cpp server of "
                           f"provider {name} now holds {n_ctx:,} tokens per request: prompts between the two go to "
                           f"the route's next target although this server could answer them. Fix: context_window: "
                           f"{n_ctx}")
        elif listed and m.model not in ids:
            shown = ", ".join(i[:80] for i in sorted(ids)[:5]) + (", ..." if len(ids) > 5 else "")
            out.append(f"model {mname}: {m.model!r} is not among the models {name} serves ({shown}): every call "
                       f"would be refused. Fix: its `model:` id, or fetch it (Ollama: `ollama pull {m.model}`)")
    return out


def unlisted_remote_models(cfg: Config, name: str, listed: list[dict[str, Any]]) -> list[str]:
    """A remote provider's model id that its model list (OpenAI and Anthropic `GET /v1/models`: no tokens spent)
    does not hold, with the closest listed id. Before (session 26's leftovers) a typo showed only at the first
    request. An alias counts as listed when a listed id extends it (Anthropic's `claude-sonnet-4-5` serves
    `claude-sonnet-4-5-20250929`); a provider without a list, or a list in pages, is not checked."""
    ids = sorted({str(e.get("id")) for e in listed if e.get("id") is not None})
    if not ids:
        return []
    out = []
    for mname, m in cfg.models.items():
        if m.provider != name or m.model in ids or any(i.startswith(m.model + "-") for i in ids):
            continue
        close = difflib.get_close_matches(m.model, ids, n=1, cutoff=0.6)
        hint = f"did you mean {close[0][:80]!r}?" if close else f"none close among the {len(ids)} it lists."
        out.append(f"model {mname}: {m.model!r} is not among the models provider {name} lists: every call would be "
                   f"refused; {hint} Fix: its `model:` id")
    return out


async def serves_own_api(session: Any, p: ProviderConfig, headers: dict[str, str]) -> bool:
    """After an answer in the other API's shape: does the server take the configured kind's chat calls too? llama.cpp,
    vLLM and Ollama serve the Anthropic API as well and answer its model list (and errors) in OpenAI's shape: doctor
    told them "set kind: openai". An empty body is refused before any model runs (no tokens); a path unknown there,
    or a key header it does not read, is a wrong kind."""
    import aiohttp

    from tierwise.endpoint_url import endpoint
    from tierwise.providers.http import WRONG_KIND_STATUSES

    url = endpoint(p.base_url, "/chat/completions" if p.kind == "openai" else "/v1/messages")
    try:
        async with session.post(url, data=b"{}", headers={**headers, "content-type": "application/json"},
                                allow_redirects=False) as r:
            return r.status < 300 or (r.status >= 400 and r.status not in WRONG_KIND_STATUSES)
    except (OSError, TimeoutError, aiohttp.ClientError):
        return False


def usd_budgets_blind_to(cfg: Config) -> list[str]:
    """USD budgets next to remote models without a known price: such a model's calls cost them nothing (the
    budgets reserve and settle at its price, 0), so a cap set in dollars never stops its spend. One line."""
    usd = [b.name for b in (cfg.budgets.limits if cfg.budgets is not None else []) if b.usd is not None]
    unpriced = unpriced_names(cfg) if usd else []
    if not unpriced:
        return []
    return [f"budget{'s' if len(usd) > 1 else ''} {', '.join(usd)} cap{'' if len(usd) > 1 else 's'} USD, but "
            f"model{'s' if len(unpriced) > 1 else ''} {', '.join(unpriced)} ha{'ve' if len(unpriced) > 1 else 's'} no "
            f"known price: {'their' if len(unpriced) > 1 else 'its'} calls are counted as $0 and pass the cap. Fix: a "
            "`price: {input: USD, output: USD}` (per million tokens) on each, or a `tokens:` cap as well (it counts "
            "them)"]


def unpriced_names(cfg: Config) -> list[str]:
    """The remote models with no price: neither in the config nor in the price data (genai-prices)."""
    from tierwise.pricing import Pricer

    pricer = Pricer()
    provs = cfg.providers
    return [name for name, m in cfg.models.items() if provs[m.provider].locality == "remote"
            and m.price is None and pricer.price_for(m.model, provs[m.provider].kind, provs[m.provider].base_url) is None]


def blind_to_unpriced(cfg: Config) -> list[str]:
    """What a remote model without a known price keeps from working: USD budgets (they count it as $0) and
    reflective routes that sample by value (a local answer saves $0, so they never judge). For serve and doctor."""
    from tierwise.commands.boundary import value_blind

    return [*usd_budgets_blind_to(cfg), *(b for r in cfg.routes if (b := value_blind(cfg, r)) is not None)]


def claude_code_windows(cfg: Config, lists: dict[str, list[dict[str, Any]]] | None = None) -> list[str]:
    """Local models that rules send coding agents' big turns to — Claude Code's subagent (or main, compaction) turns,
    and with `subagent: true` also Codex's subagent turns (`x-openai-subagent`, since session 35) — with a
    `context_window` smaller than such a turn: each of them goes to the route's next target instead. `lists`
    (each provider's model list): a llama.cpp model trained for no more than that needs another model, not -c."""
    from tierwise.clients import claude_code, codex
    from tierwise.route_map import models_of
    from tierwise.starter import llama_window

    too_small: dict[str, list[str]] = {}
    codex_too: set[str] = set()  # models a `subagent: true` rule sends Codex's subagent turns to
    for rname, pc in cfg.routes.items():
        for i, rule in enumerate(getattr(pc, "rules", None) or []):
            m = rule.match
            classes = set(claude_code.expand(_names(m.claude_code))) | ({"subagent"} if m.subagent else set())
            big = sorted(c for c in classes if claude_code.TOKENS.get(c, 0) > claude_code.MIN_WINDOW // 2)
            if not big:
                continue
            codex_rule = bool(m.subagent) and codex.SUBAGENT_TOKENS > claude_code.MIN_WINDOW // 2
            for mname in models_of(cfg, rule.target):
                model = cfg.models[mname]
                prov = cfg.providers.get(model.provider)
                if prov is not None and prov.locality == "local" and model.context_window and \
                        model.context_window < claude_code.MIN_WINDOW:
                    too_small.setdefault(mname, []).append(f"rule {rule.name or i} of route {rname} ({', '.join(big)})")
                    if codex_rule:
                        codex_too.add(mname)
    out = []
    for mname, where in too_small.items():
        window = cfg.models[mname].context_window or 0
        trained = llama_window((lists or {}).get(cfg.models[mname].provider), "n_ctx_train")
        fix = (f"give the local server a context of {claude_code.MIN_WINDOW * 2:,} or more per request (llama-server "
               "-c 32768 -np 1; Ollama: OLLAMA_CONTEXT_LENGTH=32768), then set the model's context_window to it "
               "(`tierwise init --force` reads it from the server)")
        if trained is not None and trained <= window:
            fix = (f"its model was trained for {trained:,} tokens, and llama-server holds no more per request whatever "
                   "-c asks: serve a model trained for 32,768 or more, then set the model's context_window to its "
                   "size (`tierwise init --force` reads it from the server)")
        turns = (f"Claude Code's subagent turns (~{claude_code.TOKENS['subagent']:,} tokens, main turns "
                 f"~{claude_code.TOKENS['main']:,})")
        if mname in codex_too:
            turns += (f" and Codex's subagent turns (x-openai-subagent: collab_spawn, ~{codex.SUBAGENT_TOKENS:,} "
                      "tokens)")
        out.append(f"model {mname}: context_window {window:,} is smaller than {turns}, which "
                   f"{'; '.join(where)} sends to it: each goes to the route's next target. Fix: {fix}")
    return out


def coding_agent_secrets(cfg: Config) -> list[str]:
    """A config written for coding agents (a rule on Claude Code's classes or on subagents) whose routes reach a
    remote model, with no privacy class for secrets: what the agent reads (a `.env`, a key file) goes to the frontier
    model as written on its next turn. The config `tierwise init` writes is such a config (session 35, newuser35)."""

    privacy = cfg.privacy
    if privacy is not None:
        classes = getattr(privacy, "classes", None)
        if classes is None and isinstance(privacy, dict):
            classes = privacy.get("classes")
        if classes is None or "secrets" in classes:  # no `classes:` gets the default classes, secrets among them
            return []
    agent_routes = []
    for rname, pc in cfg.routes.items():
        if not _for_coding_agents(pc):
            continue
        if any(cfg.providers[cfg.models[m].provider].locality == "remote" for m in _known_models(cfg, rname)):
            agent_routes.append(rname)
    if not agent_routes:
        return []
    return [f"route {', '.join(agent_routes)} is set up for coding agents and reaches a remote model, but no privacy "
            "class catches secrets: a .env or key file Claude Code or Codex reads goes to the frontier model as "
            "written. Add `privacy: {classes: {secrets: {}}, policy: {secrets: redact}}` (README, \"Secrets stay "
            "here\"; examples/claude-code.yaml has it)"]


def _for_coding_agents(pc: Any) -> bool:
    """A route with a rule on Claude Code's request classes or on subagents."""
    rules = getattr(pc, "rules", None) or []
    return any(r.match.claude_code is not None or r.match.subagent is not None for r in rules)


def _known_models(cfg: Config, rname: str) -> list[str]:
    """The route's models that the config defines, on providers it defines."""
    from tierwise.route_map import models_of

    return [m for m in models_of(cfg, rname) if m in cfg.models and cfg.models[m].provider in cfg.providers]


def _downgrades_when_spent(b: Any, rname: str) -> bool:
    """A budget limit covers the route and its `on_exhausted` (its own, else the section's) is `downgrade`."""
    rs = b.routes.get(rname)
    return (((rs.on_exhausted if rs is not None else None) or b.on_exhausted) == "downgrade"
            and any(lim.routes is None or rname in lim.routes for lim in b.limits))


def _names(v: str | list[str] | None) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def downgrade_without_local(cfg: Config) -> list[str]:
    """`budgets.on_exhausted: downgrade` as the section's default does nothing on a route that reaches no local model
    and names no `downgrade_to`: once a budget covering it is spent, that route refuses (429) like `refuse` would.
    Documented (docs/budgets.md), but an Aider team with `architect: frontier` learned it from a 429 only (session 36,
    newuser36). One line naming the routes."""
    b = cfg.budgets
    if b is None or not b.limits:
        return []
    names = []
    for rname in cfg.routes:
        rs = b.routes.get(rname)
        if not _downgrades_when_spent(b, rname) or (rs and rs.downgrade_to):
            continue
        kinds = {cfg.providers[cfg.models[m].provider].locality for m in _known_models(cfg, rname)}
        if "remote" in kinds and "local" not in kinds:
            names.append(rname)
    if not names:
        return []
    s = "s" if len(names) > 1 else ""
    return [f"budgets.on_exhausted is downgrade, but route{s} {', '.join(names)} reach{'' if s else 'es'} no local "
            f"model: once a budget covering {'them' if s else 'it'} is spent, {'they refuse' if s else 'it refuses'} "
            f"(429) until it resets. Fix: `budgets.routes.{names[0]}.downgrade_to: <a local model>`, or a local "
            "target after the remote one"]


def downgrade_too_small(cfg: Config) -> list[str]:
    """A route set up for coding agents (a rule on Claude Code's classes or on subagents) that a spent budget sends
    down to a local model whose `context_window` is smaller than their turns: once spent, each such turn is refused
    (429 naming the budget) instead of answered. The `claude_code_windows` line covers the rules' own targets only;
    a downgrade takes the main turns too (session 37, newuser37: Codex on `main`, a 4,096-token llama.cpp model)."""
    from tierwise.clients import claude_code, codex

    b = cfg.budgets
    if b is None or not b.limits:
        return []
    out = []
    for rname, pc in cfg.routes.items():
        if not _for_coding_agents(pc) or not _downgrades_when_spent(b, rname):
            continue
        rs = b.routes.get(rname)
        known = _known_models(cfg, rname)
        to = (rs.downgrade_to if rs is not None else None) or next(
            (m for m in known if cfg.providers[cfg.models[m].provider].locality == "local"), None)
        model = cfg.models.get(to) if to is not None else None
        window = model.context_window if model is not None else None
        if not window or window >= claude_code.MIN_WINDOW:
            continue
        out.append(f"route {rname}: once a budget covering it is spent it answers from model {to} (context_window "
                   f"{window:,}), which cannot hold Claude Code's turns (~{claude_code.TOKENS['main']:,} tokens) nor "
                   f"Codex's (~{codex.SUBAGENT_TOKENS:,}): those are then refused (429) until the budget resets. Fix: "
                   f"a local model with {claude_code.MIN_WINDOW * 2:,} tokens or more (its context_window), or "
                   f"`budgets.routes.{rname}.downgrade_to: <such a model>`")
    return out
