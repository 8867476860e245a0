"""The canonical request, response and stream-event model that sits between wire formats.

Every wire codec converts to and from these types; policies, providers, verifiers and the
ledger only ever see these. The shapes follow the richer of the two APIs (Anthropic's
content blocks) so nothing is lost when the client and upstream speak different formats.

Plain dataclasses with slots, not pydantic: these are built on every request and every
stream chunk, so construction cost matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tierwise.secret_scrub import scrub

WireFormat = Literal["openai", "anthropic", "responses"]  # responses: client side only

# ---------------------------------------------------------------------------- content


@dataclass(slots=True)
class TextBlock:
    text: str
    type: Literal["text"] = "text"
    # Anthropic citations / cache_control and similar: kept so same-format encoding is lossless.
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ImageBlock:
    """An image given either inline (base64 `data` + `media_type`) or by `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI's "low"/"high"/"auto"
    type: Literal["image"] = "image"


@dataclass(slots=True)
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_use"] = "tool_use"
    # Anthropic server tools (e.g. the emulated advisor) use "server_tool_use".
    server: bool = False


@dataclass(slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: list[TextBlock | ImageBlock]
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ThinkingBlock:
    """Extended thinking. `signature` must be passed back to Anthropic unmodified."""

    thinking: str
    signature: str | None = None
    type: Literal["thinking"] = "thinking"


@dataclass(slots=True)
class RedactedThinkingBlock:
    data: str
    type: Literal["redacted_thinking"] = "redacted_thinking"


@dataclass(slots=True)
class OtherBlock:
    """A block type tierwise does not model (e.g. a server tool result); carried as raw JSON."""

    raw: dict[str, Any]
    type: Literal["other"] = "other"
    # What tierwise.tokens counted in `raw` (its PDFs' pages read once a request, not by each estimate: costs10).
    # Not copied by `dataclasses.replace` (a block with new raw counts again).
    counts: tuple[int, int, int, int, int] | None = field(default=None, init=False, compare=False, repr=False)


Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock | OtherBlock

Role = Literal["user", "assistant"]


@dataclass(slots=True)
class Message:
    role: Role
    content: list[Block]

    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    # A non-function tool (Anthropic server tools like web_search or advisor_20260301) keeps its raw definition.
    raw: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolChoice:
    """auto: model decides; any: must call some tool; tool: must call `name`; none: must not call."""

    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: str | None = None
    disable_parallel: bool = False


@dataclass(slots=True)
class ResponseFormat:
    """OpenAI response_format: text | json_object | json_schema (with `schema`)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


# ---------------------------------------------------------------------------- request


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message]
    system: list[TextBlock] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int | None = None
    # Anthropic `thinking` ({"type": "enabled", "budget_tokens": N}) or OpenAI reasoning_effort.
    thinking: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    # Fields of the source wire body that have no canonical slot; re-emitted when encoding
    # to the same format so nothing a client sent is dropped silently.
    extra: dict[str, Any] = field(default_factory=dict)
    # The format the client spoke and its decoded body: a provider of the same format can
    # forward it with only `model` rewritten. Policies that change the request must clear it
    # (use `with_changes`), which forces a fresh encode from the canonical fields.
    source_format: WireFormat | None = None
    source_body: dict[str, Any] | None = None
    # Request headers a rule or provider may need (lower-cased names): feature tag,
    # Claude Code agent id, anthropic-beta, anthropic-version.
    headers: dict[str, str] = field(default_factory=dict)
    # An OpenAI client's strict function tools, {name: parameters schema}: the upstream must honour them
    # (wire/strict_tools.py). None without any.
    strict_tools: dict[str, dict[str, Any]] | None = None

    def has_images(self) -> bool:
        for m in self.messages:
            for b in m.content:
                if isinstance(b, ImageBlock):
                    return True
                if isinstance(b, ToolResultBlock) and any(isinstance(c, ImageBlock) for c in b.content):
                    return True
        return False

    def text(self) -> str:
        """All text of the request (system + messages), for token estimates and classifiers."""
        parts = [b.text for b in self.system]
        for m in self.messages:
            for b in m.content:
                if isinstance(b, TextBlock):
                    parts.append(b.text)
                elif isinstance(b, ToolResultBlock):
                    parts.extend(c.text for c in b.content if isinstance(c, TextBlock))
                elif isinstance(b, ToolUseBlock):
                    parts.append(str(b.input))
        return "\n".join(parts)

    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                t = m.text()
                if t:
                    return t
        return ""

    def with_changes(self, **changes: Any) -> Request:
        """A copy with `changes` applied and the same-format pass-through body dropped."""
        from dataclasses import replace

        changes.setdefault("source_body", None)
        return replace(self, **changes)


# ---------------------------------------------------------------------------- response

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "error"]


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # True when counts were estimated by tierwise rather than reported by the upstream.
    estimated: bool = False
    # Of cache_write_tokens, those written to a one-hour cache (Anthropic's `ttl: "1h"`), billed at twice the
    # input price, not the five-minute write's 1.25 (pricing.cost)
    cache_write_1h_tokens: int = 0
    # Anthropic's web search server tool: searches made (`server_tool_use.web_search_requests`), billed per search
    web_searches: int = 0
    # What the upstream says the call cost in USD, where it says so (OpenRouter's `usage.cost`: its fees included,
    # such as its web plugin's results); 0 when it does not. pricing.cost counts the larger of it and the tokens' price.
    billed_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_write_1h_tokens += other.cache_write_1h_tokens
        self.web_searches += other.web_searches
        self.billed_usd += other.billed_usd
        self.estimated = self.estimated or other.estimated

    def take_prompt(self, other: Usage) -> None:
        """Take the prompt's counts (input, cache reads and writes) a stream's message_start gives."""
        self.input_tokens = other.input_tokens
        self.cache_read_tokens = other.cache_read_tokens
        self.cache_write_tokens = other.cache_write_tokens
        self.cache_write_1h_tokens = other.cache_write_1h_tokens

    def restate(self, other: Usage) -> None:
        """Take the counts a later event of a stream restates (a count it leaves at 0 is kept): a
        stream encoder's running usage, from message_delta."""
        if other.input_tokens:
            self.input_tokens = other.input_tokens
        if other.output_tokens:
            self.output_tokens = other.output_tokens
        if other.cache_read_tokens:
            self.cache_read_tokens = other.cache_read_tokens
        if other.cache_write_tokens:
            self.cache_write_tokens = other.cache_write_tokens
        if other.cache_write_1h_tokens:
            self.cache_write_1h_tokens = other.cache_write_1h_tokens
        if other.web_searches:
            self.web_searches = other.web_searches
        if other.billed_usd:
            self.billed_usd = other.billed_usd


@dataclass(slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class Choice:
    """One extra completion when the client asked for n > 1 (choice 0 lives on Response)."""

    content: list[Block]
    stop_reason: StopReason | None
    logprobs: list[TokenLogprob] | None = None


@dataclass(slots=True)
class Response:
    id: str
    model: str
    content: list[Block]
    stop_reason: StopReason | None = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    logprobs: list[TokenLogprob] | None = None
    extra_choices: list[Choice] = field(default_factory=list)
    # The upstream's body, exactly as received, and its format: the ingress sends it as is
    # when the client speaks the same format and no policy changed the answer.
    raw: bytes | None = None
    raw_format: WireFormat | None = None

    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


# ---------------------------------------------------------------------------- streaming
# Stream events mirror Anthropic's event sequence, which is the finer-grained of the two:
# an OpenAI chunk stream maps onto it without loss and back.


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = field(default_factory=Usage)
    kind: Literal["message_start"] = "message_start"


@dataclass(slots=True)
class BlockStart:
    index: int
    block: Block  # text/thinking blocks start empty; tool_use starts with input {}
    kind: Literal["block_start"] = "block_start"


@dataclass(slots=True)
class BlockDelta:
    index: int
    delta_type: Literal["text", "input_json", "thinking", "signature"]
    value: str
    kind: Literal["block_delta"] = "block_delta"
    logprobs: list[TokenLogprob] | None = None


@dataclass(slots=True)
class BlockStop:
    index: int
    kind: Literal["block_stop"] = "block_stop"


@dataclass(slots=True)
class MessageDelta:
    stop_reason: StopReason | None
    usage: Usage = field(default_factory=Usage)
    stop_sequence: str | None = None
    kind: Literal["message_delta"] = "message_delta"


@dataclass(slots=True)
class MessageStop:
    kind: Literal["message_stop"] = "message_stop"


@dataclass(slots=True)
class Ping:
    kind: Literal["ping"] = "ping"


@dataclass(slots=True)
class StreamError:
    """A failure after the stream started: encoded as the client API's mid-stream error."""

    error_type: str
    message: str
    kind: Literal["error"] = "error"

    def __post_init__(self) -> None:
        self.message = scrub(self.message)  # upstream text: keep the gateway's secrets out of it


StreamEvent = MessageStart | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop | Ping | StreamError


@dataclass(slots=True)
class StreamChunk:
    """One upstream SSE message: its exact bytes (for same-format pass-through) and its events."""

    events: list[StreamEvent]
    raw: bytes | None = None
    raw_format: WireFormat | None = None
