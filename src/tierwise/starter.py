"""The starter config `tierwise init` writes (and `tierwise serve` uses when there is none):
built from what this machine has — a local Ollama on 11434, llama.cpp/LM Studio on their
usual ports, and frontier keys in the environment."""

from __future__ import annotations

import os
import socket
from typing import Any

# (name, port, base_url, model id). Ollama's default model is a text model; what a llama.cpp or LM
# Studio server runs is not known here.
TEXT_ONLY_MODELS = frozenset({"qwen2.5:7b"})
LOCAL_SERVERS = [
    ("ollama", 11434, "http://127.0.0.1:11434/v1", "qwen2.5:7b"),
    ("llamacpp", 8080, "http://127.0.0.1:8080/v1", "local"),
    ("lmstudio", 1234, "http://127.0.0.1:1234/v1", "local"),
]


START_HINTS = {11434: "`ollama serve`", 8080: "`llama-server -m MODEL.gguf --port 8080`", 1234: "LM Studio's server"}


def start_hint(base_url: str) -> str:
    """How to start the local server a base URL names, by its port (the usual servers' defaults), else in general."""
    from urllib.parse import urlsplit

    try:
        port = urlsplit(base_url).port
    except ValueError:
        port = None
    hint = START_HINTS.get(port or 0)
    return f"start it (e.g. {hint})" if hint else "start the model server it names"


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# What `init` and the starter config read from a local server's model list. The server is not trusted: what
# it says is written into tierwise.yaml and printed, and it chooses how much it sends and how fast.
MODEL_LIST_BYTES = 1 << 20
MAX_MODEL_ID = 256
MAX_WINDOW = 1 << 24  # tokens: more than any model holds; a larger `n_ctx` is a server's invention


def served_models(base_url: str, timeout: float = 2.0) -> list[dict[str, Any]] | None:
    """The models an OpenAI-compatible server lists at `base_url`/models (each entry, with an `id` fit to write
    into a config), or None when it does not answer one within `timeout` (the whole answer: a server dripping
    bytes is not waited on longer) or sends more than MODEL_LIST_BYTES."""
    import json
    import time

    from tierwise import no_redirects  # the list is read where the URL says, not elsewhere
    from tierwise.endpoint_url import endpoint

    deadline = time.monotonic() + timeout
    try:
        with no_redirects.urlopen(endpoint(base_url, "/models"), timeout=timeout) as r:
            parts, size = [], 0
            while size <= MODEL_LIST_BYTES:
                if time.monotonic() > deadline:
                    return None
                part = r.read1(64 * 1024)  # one read: `read(n)` would wait on every byte of a dripping server
                if not part:
                    break
                parts.append(part)
                size += len(part)
            if size > MODEL_LIST_BYTES:
                return None
            data = json.loads(b"".join(parts))
    except (OSError, ValueError):
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    return [e for e in entries if isinstance(e, dict) and writable_id(e.get("id"))]


def writable_id(v: Any) -> bool:
    """Whether a model id a server lists can go into tierwise.yaml and onto the terminal: a string of at most
    MAX_MODEL_ID characters, none of them a control, line or paragraph separator, bidi or zero-width character
    (written as it came, a newline in an id would add keys of the server's choosing to the config)."""
    from tierwise.commands.terminal_text import has_unsafe

    return isinstance(v, str) and 0 < len(v) <= MAX_MODEL_ID and not has_unsafe(v)


def _chat_model(default: str, listed: list[dict[str, Any]] | None) -> str:
    """The model to configure: `default` when the server serves it (or says nothing), else the first model it
    serves that is not an embedding model (a vLLM server refuses every other name; an Ollama one too)."""
    ids = [e["id"] for e in listed or []]
    if not ids or default in ids:
        return default
    chat = [i for i in ids if "embed" not in i.lower()]
    return chat[0] if chat else default


def llama_window(listed: list[dict[str, Any]] | None, key: str = "n_ctx") -> int | None:
    """What a llama.cpp server holds per request (its -c divided by its slots, `meta.n_ctx` in its model list),
    or, with key="n_ctx_train", the context its model was trained for (llama-server holds no more per request,
    whatever -c asks)."""
    for e in listed or []:
        meta = e.get("meta")
        n = meta.get(key) if isinstance(meta, dict) else None
        if e.get("owned_by") == "llamacpp" and type(n) is int and 0 < n <= MAX_WINDOW:
            return n
    return None


def detect(local_url: str | None = None) -> dict[str, object]:
    """What this machine has: the local model servers that answer (or the one at `local_url`, `tierwise init
    --local`: named after the usual server on its port), with the model each serves and, for llama.cpp, the
    context it holds per request; and which frontier keys are set."""
    from urllib.parse import urlsplit

    if local_url is not None:
        url = local_url.rstrip("/")
        port = urlsplit(url).port or 80
        name, default = next(((n, m) for n, p, _u, m in LOCAL_SERVERS if p == port), ("local-server", "local"))
        candidates = [(name, port, url, default)]
    else:
        candidates = [s for s in LOCAL_SERVERS if port_open(s[1])]
    found_local, window, trained = [], None, None
    for n, p, u, m in candidates:
        listed = served_models(u)
        if n == "local-server" and llama_window(listed) is not None:  # llama.cpp on a port of its own choosing
            n = "llamacpp"
        found_local.append((n, p, u, _chat_model(m, listed)))
        if len(found_local) == 1:
            window, trained = llama_window(listed), llama_window(listed, "n_ctx_train")
    return {
        "local": found_local,
        "local_window": window,
        "local_trained": trained,
        "anthropic_key": bool(os.environ.get("ANTHROPIC_API_KEY")),
        "openai_key": bool(os.environ.get("OPENAI_API_KEY")),
    }


def _yaml_str(text: str) -> str:
    """`text` as a double-quoted YAML scalar (JSON's quoting, which YAML reads the same way): a model id with
    `#`, `: ` or quotes stays one value. Only `writable_id` ids get here, so no escape but \\" and \\\\ is needed."""
    import json

    return json.dumps(text, ensure_ascii=False)


def starter_yaml(found: dict[str, object] | None = None) -> str:
    found = found if found is not None else detect()
    local = found["local"] or [LOCAL_SERVERS[0]]  # default to Ollama even if not running yet
    name, _port, url, model = local[0]  # type: ignore[index]
    # The frontier tier is Anthropic's, unless only an OpenAI key is here: then OpenAI's models take
    # its place (a config whose every frontier call fails for want of a key helps nobody).
    openai_only = bool(found.get("openai_key")) and not found.get("anthropic_key")
    big, small = ("gpt", "gpt-mini") if openai_only else ("claude-sonnet", "claude-haiku")
    # Every model gets its `context_window`: a model without one is called whatever the prompt's size
    # (no skip to the next target, no max_tokens clamp), and budgets cannot bound a reservation by it.
    lines = [
        "# tierwise.yaml: written by `tierwise init`. Reference: README.md#configuration-tierwiseyaml",
        "server:",
        "  host: 127.0.0.1",
        "  port: 4000",
        "  default_route: main        # model names that match no route or model go here",
        "",
        "ledger:",
        "  path: tierwise-ledger.db",
        "",
        f"reference_model: {big}  # savings are measured against this model's prices",
        "",
        "providers:",
        f"  {name}:",
        "    kind: openai",
        f"    base_url: {url}",
        "    locality: local",
        "    timeouts: {connect: 2, read: 300}",
    ]
    if not openai_only:
        lines += [
            "  anthropic:",
            "    kind: anthropic",
            "    base_url: https://api.anthropic.com",
            "    api_key_env: ANTHROPIC_API_KEY",
            "    locality: remote",
        ]
    if found.get("openai_key"):
        lines += [
            "  openai:",
            "    kind: openai",
            "    base_url: https://api.openai.com/v1",
            "    api_key_env: OPENAI_API_KEY",
            "    locality: remote",
        ]
    lines += [
        "",
        "models:",
        "  local:",
        f"    provider: {name}",
        f"    model: {_yaml_str(model)}",
        # Ollama cuts a longer prompt to its own context (4096 on most machines) without an error
        f"    context_window: {found.get('local_window') or 32768}" + (
            "        # Ollama's own is 4096 unless raised: OLLAMA_CONTEXT_LENGTH=32768 ollama serve"
            if name == "ollama" else "        # what the llama.cpp server holds per request"
            if found.get("local_window") else ""),
        # An OpenAI client may send no max_tokens, and a small model that never stops then writes until its context
        # is full (minutes of a busy slot, then a 504): bounded, leaving half a small window for the prompt.
        f"    default_max_tokens: {max(1, min(4096, int(found.get('local_window') or 8192) // 2))}"  # type: ignore[call-overload]
        "   # for a request that sets no max_tokens (a client's own value is kept)",
    ]
    if model in TEXT_ONLY_MODELS:
        lines += ["    vision: false              # requests with images go to the next target, without a call"]
    if openai_only:
        lines += [
            "  gpt:",
            "    provider: openai",
            "    model: gpt-4o",
            "    context_window: 128000",
            "    vision: true",
            "  gpt-mini:",
            "    provider: openai",
            "    model: gpt-4o-mini",
            "    context_window: 128000",
            "    vision: true",
        ]
    else:
        lines += [
            "  claude-sonnet:",
            "    provider: anthropic",
            "    model: claude-sonnet-4-5",
            "    context_window: 200000",
            "    vision: true",
            "  claude-haiku:",
            "    provider: anthropic",
            "    model: claude-haiku-4-5",
            "    context_window: 200000",
            "    vision: true",
        ]
        if found.get("openai_key"):
            lines += ["  gpt:", "    provider: openai", "    model: gpt-4o-mini", "    context_window: 128000",
                      "    vision: true"]
    lines += [
        "",
        "routes:",
        "  main:",
        "    policy: rules",
        "    rules:",
        "      - name: claude-code-background   # titles, page summaries (docs/claude-code-traffic.md)",
        "        match: {claude_code: background}",
        "        target: local-first",
        "      - name: claude-code-haiku        # when ANTHROPIC_DEFAULT_HAIKU_MODEL names a haiku model",
        "        match: {model: '*haiku*'}",
        "        target: local-first",
        "      - name: claude-code-subagents    # and Codex's subagents (x-openai-subagent)",
        "        match: {subagent: true}",
        "        target: local-first",
        "      - name: images",
        "        match: {images: true}",
        f"        target: {big}",
        "    default: frontier",
        "  local-first:",
        "    policy: fallback",
        f"    targets: [local, {small}]",
        "  frontier:",
        "    policy: fallback",
        f"    targets: [{big}, local]",
        "",
        # The rules above send coding agents' turns to the frontier model, and with them whatever the agent read: a
        # `.env` would reach it key by key. Secrets only (no NER model loads); `tierwise doctor` warned of this very
        # config before it had the section (session 36, newuser36).
        "privacy:                       # secrets a coding agent reads (.env, keys) leave only as placeholders",
        "  classes: {secrets: {}}       # add `pii: {}` and a policy for it to treat names, e-mails ... too",
        "  policy: {secrets: redact}    # (docs/privacy.md); `secrets: allow` turns it off",
        "",
    ]
    return "\n".join(lines)
