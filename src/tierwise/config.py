"""tierwise.yaml: the pydantic models, `${ENV}` interpolation and loading with precise errors.

A bad config fails at start with a `ConfigError` that names the file, the line, the key path
and what is wrong. Route policies validate their own keys through the policy registry, so
this module knows the shape of providers and models but not of every policy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tierwise.budgets.config import BudgetsConfig, RateLimitsConfig
from tierwise.budgets.config import references as spend_references
from tierwise.cache.settings import CacheConfig
from tierwise.compression.settings import CompressionConfig
from tierwise.config_env import check_env_names, interpolate
from tierwise.config_lines import format_validation_error, line_index, located_error
from tierwise.dispatch.approvals_config import ApprovalsConfig
from tierwise.dispatch.approvals_config import references as approval_references
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.dispatch.config import DispatchConfig
from tierwise.ensembles.settings import EnsemblesConfig
from tierwise.errors import ConfigError
from tierwise.observability.settings import ObservabilityConfig
from tierwise.pricing import MIN_TOKEN_PRICE, Price
from tierwise.sandbox.settings import SandboxConfig
from tierwise.server.limits_settings import ServerLimits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Timeouts(_Strict):
    connect: float = Field(5.0, gt=0, description="seconds to open a connection")
    read: float = Field(300.0, gt=0, description="seconds between two bytes of an answer, and between two "
                        "complete events of a stream (bytes that trickle without finishing an event do not count)")
    total: float = Field(600.0, gt=0, description="seconds for a whole non-streamed answer")
    stream_total: float = Field(3600.0, gt=0, description="seconds a stream may run in all, however steadily "
                                "its events come")
    pool: float = Field(30.0, gt=0, description="seconds a call may wait for a connection when the provider's "
                        "max_connections are all in use (then 503 overloaded_error; a route moves on to its next "
                        "target), the connect time included")


# Servers and hosts that speak the OpenAI API, named as they are written without punctuation.
_OPENAI_COMPATIBLE = frozenset({
    "ollama", "llamacpp", "llamaserver", "llamacppserver", "vllm", "lmstudio", "sglang", "tgi", "localai",
    "openrouter", "berget", "together", "groq", "deepseek", "mistral", "fireworks", "azure", "azureopenai",
    "litellm", "koboldcpp", "llamafile", "jan", "gpt4all", "tabbyapi", "exllama", "aphrodite", "mlx", "mlxlm",
})


class ProviderConfig(_Strict):
    kind: Literal["openai", "anthropic"]
    base_url: str
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    locality: Literal["local", "remote"] = "remote"
    region: str | None = None
    regions: list[str] = Field(default_factory=list, description="region tags (e.g. eu, us) a privacy class "
                               "with `regions:` may be sent to; `region` counts as one more")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers sent upstream")
    max_connections: int = Field(256, ge=1, description="calls in flight to this provider at once (its pool of "
                                 "connections); more wait up to timeouts.pool for one to come free")
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=4096, description="largest answer (whole body, or "
                                    "a whole stream) accepted from this upstream")
    max_stream_event_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="largest single stream event "
                                        "(an event that never ends is cut off at this size)")
    max_usage_tokens: int = Field(4_000_000, ge=1, description="largest token count (input, output, cache) taken "
                                  "from this upstream's usage report for the ledger, budgets and rate limits; "
                                  "output is also cut to the call's max_tokens")
    max_concurrency: int | None = Field(
        None, ge=1, description="ensemble calls in flight at once (a local GPU server's capacity); "
        "default 4 for a local provider, 32 for a remote one")
    image_urls: Literal["forward", "refuse", "fetch"] | None = Field(
        None, description="http(s) image URLs in requests to this provider: `forward` them (the upstream may "
        "fetch them from where it runs), `refuse` them (400), or `fetch` them in the gateway and send them "
        "inline (server.image_fetch bounds it); default: refuse for a local provider, forward for a remote one")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens", "both"] | None = Field(
        None, description="kind openai: the field that carries the output cap of a request translated to this "
        "upstream (from an Anthropic or Responses client, or set by the gateway): OpenAI's reasoning models refuse "
        "`max_tokens`, Ollama, TGI and LM Studio read only it; `both` sends the two with the same value; default: "
        "max_completion_tokens for api.openai.com and Azure OpenAI, max_tokens for any other URL")

    @property
    def cap_field(self) -> str:
        if self.max_tokens_field is not None:
            return self.max_tokens_field
        host = self.base_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()
        openai = host == "api.openai.com" or host.endswith((".openai.azure.com", ".cognitiveservices.azure.com"))
        return "max_completion_tokens" if openai else "max_tokens"

    @property
    def image_url_policy(self) -> str:
        return self.image_urls or ("refuse" if self.locality == "local" else "forward")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: object) -> object:
        # A newcomer names their server here (`kind: ollama`); every such server speaks OpenAI's API.
        if isinstance(v, str) and v not in ("openai", "anthropic"):
            name = re.sub(r"[^a-z0-9]", "", v.lower())
            if name in _OPENAI_COMPATIBLE:
                raise ValueError(f"{v!r} is a server, not a kind: {v} speaks the OpenAI API, so write `kind: openai` "
                                 "(with its /v1 URL as base_url); the kinds are 'openai' or 'anthropic'")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:11434/v1")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _one_authorization(self) -> ProviderConfig:
        # aiohttp sends `user:password@` as an Authorization header and refuses a request that also
        # carries one: every call would fail (a 500 per request) instead of the config at start.
        if "@" in self.base_url.split("://", 1)[1].split("/", 1)[0]:
            if self.kind == "openai" and self.api_key_env:
                raise ValueError("base_url carries credentials (user:password@) and api_key_env is set: both become "
                                 "the Authorization header; keep one")
            if any(k.lower() == "authorization" for k in self.headers):
                raise ValueError("base_url carries credentials (user:password@) and headers sets Authorization; "
                                 "keep one")
        return self

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class ModelConfig(_Strict):
    provider: str
    model: str = Field(description="the model id the upstream expects")
    context_window: int | None = Field(None, ge=1)
    vision: bool | None = Field(None, description="does the model take images: false = requests with images "
                                "skip it without a call (a route moves on to its next target); unset = unknown, tried")
    tools: bool = True
    json_mode: bool = True
    structured_output: Literal["instruction", "native"] = Field(
        "instruction", description="how an OpenAI client's `json_schema` response format reaches an Anthropic-format "
        "upstream: `native` = Anthropic's `output_config.format` (Claude Sonnet 4.5, Opus 4.1, Haiku 4.5 and later), "
        "`instruction` = the schema in the system prompt; the answer is checked against the schema either way")
    logprobs: bool = False
    price: Price | None = Field(None, description="USD per million tokens; local models default to 0")
    max_reported_cost: float | None = Field(None, ge=0, le=1000, description="USD one call of this model is counted "
                                            "at most from the cost its upstream reports (`usage.cost`), when the "
                                            "model has no price (none here, none in genai-prices); default: its "
                                            "tokens at $150 / $600 per million (the dearest listed prices) + $10")
    default_max_tokens: int | None = Field(None, ge=1, le=10_000_000, description="output tokens a call to this "
                                           "model may write when the client sent no max_tokens (OpenAI clients may "
                                           "omit it): a small model that never stops otherwise writes until its "
                                           "context is full or `timeouts.read` passes; a client's own value is kept")

    max_output_tokens: int | None = Field(None, ge=1, le=10_000_000, description="the most answer tokens the model "
                                          "writes in one call (its published max output): a client's larger "
                                          "max_tokens is lowered to it before the call, and a budget reserves no "
                                          "more for it (docs/budgets.md)")
    output_tokens_per_second: float | None = Field(None, gt=0, le=1_000_000, description="the fastest the model "
                                                   "writes: a call cut before its usage came is billed what it can "
                                                   "have written unseen at this rate; unset = measured from its own "
                                                   "long answers (x2), at most 1,000 (docs/budgets.md)")
    hidden_reasoning: bool | None = Field(None, description="does the model write reasoning it bills and does not "
                                          "stream: a call cut before its usage came is billed what it can have "
                                          "written by then (docs/budgets.md); unset = when the request asks for "
                                          "reasoning, or the id is OpenAI's o-series/gpt-5 or Gemini 2.5/3")

    @field_validator("context_window", "default_max_tokens", "max_output_tokens", "output_tokens_per_second", mode="before")
    @classmethod
    def _tokens_not_yes(cls, v: Any) -> Any:
        # YAML reads `yes`/`true` as a bool, and pydantic a bool as 1: `default_max_tokens: yes` cut every answer
        # at one token, `context_window: true` skipped the model on every request, silently.
        if isinstance(v, bool):
            raise ValueError(f"{str(v).lower()} is not a number of tokens (write one, such as 4096)")
        return v

    @field_validator("price")
    @classmethod
    def _whole_price(cls, v: Price | None) -> Price | None:
        # `price: {input: 3}` read as free output tokens: every cost, budget and saving understated, silently.
        if v is not None and (missing := [k for k in ("input", "output") if k not in v.model_fields_set]):
            raise ValueError(f"`{missing[0]}` is missing: give both input and output (USD per million tokens; "
                             "0 for free), or an omitted one would count as free")
        # A price per token written where one per million is read (OpenAI and Anthropic list both): $3 a million
        # as `input: 0.000003` made every cost a millionth of itself, and a $10 budget stopped nothing (review34b).
        # No real model costs less than a tenth of a cent a million tokens: 0 is free, anything that low is a slip.
        for k in ("input", "output"):
            x = getattr(v, k) if v is not None else 0.0
            if 0 < x < MIN_TOKEN_PRICE:
                raise ValueError(f"`{k}: {x:g}` is USD per million tokens, a millionth of any real price: per token, "
                                 f"write {x * 1e6:g} (0 for a free model)")
        return v


class BreakerConfig(_Strict):
    failures: int = Field(5, ge=1, description="consecutive failures that open the breaker")
    cooldown: float = Field(30.0, gt=0, description="seconds before a half-open probe")


# ---------------------------------------------------------------------------- browser and client reach
# Defaults: what the official SDKs and Claude Code need, nothing that adds reach (MCP servers,
# code containers, server tools, files) to the operator's upstream account.
DEFAULT_ANTHROPIC_BETAS = [
    "claude-code-*", "interleaved-thinking-*", "fine-grained-tool-streaming-*", "context-management-*",
    "context-1m-*", "prompt-caching-*", "effort-*", "thinking-token-count-*", "mid-conversation-system-*",
    "token-efficient-tools-*", "output-128k-*", "token-counting-*", "pdfs-*", "structured-outputs-*",
    "redact-thinking-*",  # Claude Code's interactive sessions (2.1.197) send it
]
DEFAULT_ANTHROPIC_FIELDS = ["context_management", "output_config", "output_format", "cache_control"]
DEFAULT_OPENAI_FIELDS = [
    "stream_options", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "verbosity",
    "prompt_cache_key", "safety_identifier", "prediction",
    # sampling knobs local servers (llama.cpp, vLLM) understand
    "top_k", "min_p", "repeat_penalty", "repetition_penalty", "cache_prompt", "chat_template_kwargs",
]


class BrowserGuard(_Strict):
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host names (glob) accepted besides IP literals, `localhost`, "
        "this machine's name and server.host; `*` accepts any (turns off the DNS-rebinding guard)")
    allowed_origins: list[str] = Field(
        default_factory=list, description="browser origins (scheme://host[:port]) that may call the gateway; "
        "`*` = any page on the web. Requests with any other Origin, or Sec-Fetch-Site cross-site, get 403")
    allow_non_json: bool = Field(
        False, description="accept JSON bodies sent with a Content-Type other than application/json "
        "(lets browser pages post without a CORS preflight)")


class ForwardingPolicy(_Strict):
    anthropic_betas: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ANTHROPIC_BETAS),
        description="client anthropic-beta flags (glob) passed upstream; others are dropped from the header")
    anthropic_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ANTHROPIC_FIELDS),
        description="top-level Messages fields tierwise does not model that are passed upstream; others are "
        "dropped, except mcp_servers and container, which are refused (400)")
    openai_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_OPENAI_FIELDS),
        description="top-level Chat Completions fields tierwise does not model that are passed upstream; others "
        "are dropped, except web_search_options, which is refused (400); `*` passes everything")
    server_tools: list[str] = Field(
        default_factory=list, description="Anthropic tool types (glob, e.g. web_search_*) clients may use; a "
        "tool with any other non-custom type is refused (400)")


class ResponsesStoreConfig(_Strict):
    """Responses the gateway keeps for `previous_response_id` (in memory; docs/responses.md)."""

    max_count: int = Field(1000, ge=0, le=1_000_000, description="stored responses at most (0 stores none); "
                           "the oldest go first")
    max_bytes: int = Field(64 * 1024 * 1024, ge=0, description="bytes of stored conversations in all")
    max_response_bytes: int = Field(4 * 1024 * 1024, ge=0, description="a larger conversation is not stored")
    ttl: float = Field(3600.0, gt=0, le=30 * 86400, description="seconds a stored response can be continued")


class ClientKey(_Strict):
    env: str = Field(description="environment variable holding the key")
    name: str | None = Field(None, max_length=64, description="the key's name in per-key budgets and rate "
                             "limits (default: the variable's name)")
    routes: list[str] | None = Field(
        None, description="routes (and models) this key may name; none = all")
    direct_models: bool | None = Field(
        None, description="may this key name a model directly instead of a route; default server.direct_models")
    tenant: str | None = Field(None, max_length=200, description="the key's scope for cached answers: keys with "
                               "the same tenant share cache entries; default: the key's own scope (its env name)")


class ImageFetchConfig(_Strict):
    """Bounds on the image URLs the gateway fetches itself (providers with `image_urls: fetch`)."""

    max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024, description="largest image fetched")
    max_images: int = Field(8, ge=1, le=100, description="image URLs fetched per request; more: 400")
    timeout: float = Field(10.0, gt=0, le=120, description="seconds for one image, redirects included")
    max_redirects: int = Field(3, ge=0, le=10, description="redirects followed per image (each target checked again)")
    max_concurrent: int = Field(8, ge=1, le=256, description="image fetches in flight in the whole gateway")
    allow_networks: list[str] = Field(
        default_factory=list, description="networks (CIDR) the gateway may fetch images from although they are "
        "not public (an internal image server); by default only public addresses are fetched from")

    @field_validator("allow_networks")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        import ipaddress

        for n in v:
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError:
                raise ValueError(f"{n!r} is not a network (CIDR such as 10.1.2.0/24)") from None
        return v


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    api_keys_env: list[str | ClientKey] = Field(
        default_factory=list, description="client keys: environment variable names, or {env, routes, "
        "direct_models} to scope a key; none = no auth"
    )
    admin_keys_env: list[str] = Field(
        default_factory=list, description="environment variables holding admin keys: only these may decide "
        "approvals (`tierwise approvals`, /v1/tierwise/approvals) and read every client's requests, traces "
        "and budget buckets (docs/observability.md#access); a gateway key may not")
    direct_models: bool = Field(True, description="clients may name a model directly, bypassing routes")
    default_route: str | None = Field(None, description="route for model names that match nothing")
    limits: ServerLimits = Field(default_factory=ServerLimits)
    browser: BrowserGuard = Field(default_factory=BrowserGuard)
    forwarding: ForwardingPolicy = Field(default_factory=ForwardingPolicy)
    access_log: bool = Field(False, description="log one line per HTTP request (method, path, status, ms, "
                             "request id, route) on the console; also `tierwise serve --access-log`")
    responses: ResponsesStoreConfig = Field(default_factory=ResponsesStoreConfig)
    image_fetch: ImageFetchConfig = Field(default_factory=ImageFetchConfig)

    @model_validator(mode="after")
    def _budget_fits_a_body(self) -> ServerConfig:
        if self.limits.max_body_bytes_in_flight < self.max_body_bytes:
            raise ValueError(f"limits.max_body_bytes_in_flight ({self.limits.max_body_bytes_in_flight}) must be at "
                             f"least max_body_bytes ({self.max_body_bytes}), or no body of the largest size fits")
        return self


class JournalConfig(_Strict):
    """The ledger's crash journal (tierwise.ledger.journal)."""

    enabled: bool = Field(True, description="write each record to an append-only journal before the answer ends, "
                          "so a crashed process loses no row (one small write per request)")
    fsync: bool = Field(False, description="also flush each journal line to the device before the answer ends: "
                        "survives a power loss, costs one disk flush per request")
    segment_bytes: int = Field(4 << 20, ge=4096, description="start a new journal file past this size; "
                               "files whose rows are all committed are removed")
    max_bytes: int = Field(256 << 20, ge=4096, description="the journal files' disk use at most, per process (the "
                           "first file is always made): past it, while the ledger's writer is behind, records are "
                           "not journaled; one with nowhere else to wait (ledger.max_queued reached) is dropped and "
                           "counted, as with the journal off")


class LedgerConfig(_Strict):
    path: str = "tierwise-ledger.db"
    enabled: bool = True
    store_text: bool = Field(
        False, description="also store prompt and answer text (needed for replay and training on your traffic)"
    )
    journal: JournalConfig = Field(default_factory=JournalConfig)
    max_queued: int = Field(10_000, ge=1, description="records held in memory for the ledger's writer at most "
                            "(~1 KB each, more with store_text); past it they wait in the journal only, or, "
                            "with the journal off, are dropped and counted")
    max_queued_chars: int = Field(64 << 20, ge=1, description="and at most this many characters of "
                                  "conversation text (store_text prompts and answers, shadow pairs) in them")
    keep_days: float | None = Field(None, gt=0, description="delete rows older than this many days (the writer "
                                    "does, while records come in); unset: keep every row (the file grows for ever)")
    max_rows: int | None = Field(None, ge=1, description="keep at most this many rows, the oldest deleted first; "
                                 "unset: no limit")

    @field_validator("path")
    @classmethod
    def _a_file(cls, v: str) -> str:
        # Every reader and the writer thread open their own connection: an in-memory database
        # would be a different, empty one for each.
        if v.strip() == "" or v.startswith(":memory:") or "mode=memory" in v:
            raise ValueError("the ledger needs a file path; use `enabled: false` to run without a ledger")
        return v

    def resolved_path(self, base_dir: str) -> str:
        """Relative paths are relative to the config file's folder."""
        if Path(self.path).is_absolute():
            return self.path
        return str(Path(base_dir) / self.path)


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    reference_model: str | None = Field(None, description="frontier model whose prices the savings compare to")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    # Each route is validated by its policy's own config model (see policies/registry.py).
    routes: dict[str, Any] = Field(default_factory=dict)
    ensembles: EnsemblesConfig = Field(default_factory=EnsemblesConfig)
    # Validated by tierwise.privacy.policy_config.PrivacyConfig in validate_references (docs/privacy.md).
    privacy: Any = Field(None, description="the privacy boundary: data classes, per-route policy, audit")
    budgets: BudgetsConfig | None = Field(None, description="spend caps (docs/budgets.md); off when absent")
    rate_limits: RateLimitsConfig | None = Field(None, description="requests/tokens per minute (docs/budgets.md)")
    cache: CacheConfig = Field(default_factory=CacheConfig, description="answer cache (docs/cache.md); off by default")
    compression: CompressionConfig = Field(default_factory=CompressionConfig,
                                           description="context compression per route (docs/compression.md)")
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    approvals: ApprovalsConfig | None = Field(None, description="human approval gates (docs/distributed.md); "
                                              "off when absent")
    blackboard: BlackboardConfig = Field(default_factory=BlackboardConfig,
                                         description="live per-model statistics, shared by replicas (docs/distributed.md)")
    dispatch: DispatchConfig | None = Field(None, description="distributed mode on Redis: capability workers and "
                                            "the routes that dispatch to them (docs/distributed.md)")
    source: str | None = Field(None, exclude=True)
    base_dir: str = Field(".", exclude=True)


# ---------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str], *, sections: tuple[str, ...] | None = None) -> Config:
    p = Path(path)
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found (run `tierwise init` to write a starter config)", file=file) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=file) from None
    except UnicodeDecodeError as e:
        what = "UTF-16 text (as PowerShell's `>` writes)" if e.object[:2] in (b"\xff\xfe", b"\xfe\xff") else \
            f"not UTF-8 text (byte {e.start} is 0x{e.object[e.start]:02x})"
        raise ConfigError(f"{what}: save it as UTF-8", file=file) from None
    cfg = parse_config(text, file=file, sections=sections)
    cfg.base_dir = str(p.resolve().parent)
    return cfg


def parse_config(text: str, *, file: str | None = None, sections: tuple[str, ...] | None = None) -> Config:
    """The config in `text`. With `sections`, only those top-level sections are read (interpolated and validated;
    the rest are left at their defaults and no cross reference is checked): a command that reads nothing else
    (`tierwise worker --acl`) then needs no `${VAR}` of the others set, provider keys included."""
    from tierwise.config_keys import yaml_mapping

    data = yaml_mapping(text, file)
    if sections is not None:
        data = {k: v for k, v in data.items() if k in sections}
    index = line_index(text)
    data = interpolate(data, "", file, index, located_error)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        raise format_validation_error(e, file=file, prefix="", index=index, model=Config) from None
    cfg.source = file
    if sections is None:
        validate_references(cfg, file=file, index=index)
    return cfg


def validate_references(cfg: Config, *, file: str | None = None, index: dict[str, int] | None = None) -> None:
    """Check cross references and validate each route with its policy's config model."""
    from tierwise.config_keys import unknown_name
    from tierwise.policies.registry import POLICY_TYPES, load_builtin_policies

    index = index or {}
    load_builtin_policies()
    for name, m in cfg.models.items():
        if m.provider not in cfg.providers:
            raise located_error(
                unknown_name("provider", m.provider, cfg.providers),
                file,
                f"models.{name}.provider",
                index,
            )
    dispatching = [name for name, r in cfg.routes.items() if _mentions_capability(r)]
    if dispatching:
        from tierwise.dispatch.route_target import lift_inline_capabilities

        cfg.routes = lift_inline_capabilities(cfg.routes)
    clash = set(cfg.models) & set(cfg.routes)
    if clash:
        raise located_error("a route and a model share this name", file, f"routes.{sorted(clash)[0]}", index)
    targets = set(cfg.models) | set(cfg.routes)
    parsed: dict[str, Any] = {}
    for name, raw in cfg.routes.items():
        path = f"routes.{name}"
        if isinstance(raw, str):  # shorthand: `alias: model-name`
            raw = {"policy": "fallback", "targets": [raw]}
        if isinstance(raw, list):  # shorthand: `name: [a, b]` is a fallback chain
            raw = {"policy": "fallback", "targets": raw}
        if not isinstance(raw, dict) or "policy" not in raw:
            raise located_error(
                f"a route needs a `policy` (one of: {', '.join(sorted(POLICY_TYPES))})", file, path, index
            )
        ptype = POLICY_TYPES.get(raw["policy"])
        if ptype is None:
            raise located_error(
                unknown_name("policy", raw["policy"], POLICY_TYPES),
                file,
                f"{path}.policy",
                index,
            )
        try:
            pc = ptype.config.model_validate(raw)
        except ValidationError as e:
            raise format_validation_error(e, file=file, prefix=path, index=index, model=ptype.config) from None
        except ConfigError as e:
            raise located_error(e.message, file, path, index) from None
        for ref in ptype.references(pc):
            if ref not in targets:
                from tierwise.config_keys import value_path

                raise located_error("refers to " + unknown_name("model or route", ref, targets), file,
                                    value_path(cfg.routes[name], ref, path), index)
        parsed[name] = pc
    cfg.routes = parsed
    if cfg.dispatch is None and any(getattr(pc, "policy", None) == "capability" for pc in parsed.values()):
        # Caught here (not when the gateway is built) so `doctor` says it and `serve` fails cleanly.
        raise located_error("a capability target needs a `dispatch:` section saying where Redis is and which tenant "
                   "(docs/distributed.md)", file, f"routes.{dispatching[0]}", index)
    if cfg.server.default_route and cfg.server.default_route not in targets:
        raise located_error(unknown_name("route or model", cfg.server.default_route, targets), file,
                            "server.default_route", index)
    for i, k in enumerate(cfg.server.api_keys_env):
        for r in (k.routes or []) if isinstance(k, ClientKey) else []:
            if r not in targets:
                raise located_error(unknown_name("route or model", r, targets), file,
                                    f"server.api_keys_env[{i}].routes", index)
    if cfg.privacy is not None and not hasattr(cfg.privacy, "class_entities"):
        from tierwise.privacy.policy_config import PrivacyConfig

        try:
            cfg.privacy = PrivacyConfig.model_validate(cfg.privacy)
        except ValidationError as e:
            raise format_validation_error(e, file=file, prefix="privacy", index=index,
                                              model=PrivacyConfig) from None
        for r in cfg.privacy.routes:
            if r not in targets:
                raise located_error(unknown_name("route", r, targets), file, f"privacy.routes.{r}", index)
    for where, problem in spend_references(cfg.budgets, cfg.rate_limits, targets):
        raise located_error(problem, file, where, index)
    for where, problem in approval_references(cfg.approvals, set(cfg.routes), set(cfg.models)):
        raise located_error(problem, file, where, index)
    if cfg.approvals is not None and (cfg.approvals.routes or cfg.approvals.capabilities) \
            and not cfg.server.admin_keys_env:
        raise located_error("approval gates need someone to decide them: name the environment variable of an admin key "
                   "in server.admin_keys_env", file, "approvals", index)
    for section, names in (("cache", cfg.cache.routes), ("compression", cfg.compression.routes)):
        for r in names:
            if r not in targets:
                raise located_error(unknown_name("route or model", r, targets), file, f"{section}.routes.{r}", index)
    for r, rc in cfg.compression.routes.items():
        if rc.method == "summary" and rc.summary_model not in targets:
            from tierwise.config_keys import shown

            raise located_error(f"method summary needs summary_model: a known model or route, not {shown(rc.summary_model)}",
                       file, f"compression.routes.{r}.summary_model", index)
    if cfg.reference_model and cfg.reference_model not in cfg.models:
        raise located_error(unknown_name("model", cfg.reference_model, cfg.models), file, "reference_model", index)
    check_env_names(cfg, file, index, located_error)
    _check_cycles(cfg, file, index)


def _mentions_capability(v: Any) -> bool:
    """Whether a route's raw config has a `{capability: ...}` target anywhere (distributed mode)."""
    if isinstance(v, dict):
        return "capability" in v or any(_mentions_capability(x) for x in v.values())
    if isinstance(v, list):
        return any(_mentions_capability(x) for x in v)
    return False


def _check_cycles(cfg: Config, file: str | None, index: dict[str, int]) -> None:
    from tierwise.policies.registry import POLICY_TYPES

    graph = {n: POLICY_TYPES[pc.policy].references(pc) for n, pc in cfg.routes.items()}
    state: dict[str, int] = {}

    def visit(n: str, chain: list[str]) -> None:
        if state.get(n) == 2 or n not in graph:
            return
        if state.get(n) == 1:
            raise located_error("routes refer to each other in a cycle: " + " -> ".join(chain + [n]), file, f"routes.{n}", index)
        state[n] = 1
        for m in graph[n]:
            visit(m, chain + [n])
        state[n] = 2

    for n in graph:
        visit(n, [])
