"""The recorded upstream streams of the conformance suite and what a client must get from each.

Each `.sse` file under transcripts/ is a stream byte for byte as the named kind of server sends it
(written from the providers' documented stream formats; see transcripts/README.md). `Expected`
says what any client must end up with, whatever format it speaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DIR = Path(__file__).parent / "transcripts"


@dataclass(frozen=True)
class Expected:
    thinking: str = ""
    signature: str | None = None  # only an Anthropic upstream signs thinking
    text: str = ""
    tools: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (id, name, input)
    stop: str = "end_turn"  # Anthropic stop_reason; OpenAI finish_reason via FINISH
    input_tokens: int = 0  # Anthropic's meaning: uncached input
    cache_read: int = 0
    output_tokens: int = 0
    pieces: bool = True  # the upstream streams each tool input in several pieces
    # A stream an OpenAI client gets as the upstream's bytes, off-spec as they are. None since wire12: tool calls
    # without `index` (Gemini) are relayed with their places, and the openai SDK accumulates them.
    verbatim_to_openai_clients: bool = False


@dataclass(frozen=True)
class Transcript:
    name: str
    upstream: str  # "openai" | "anthropic"
    expected: Expected

    whole: bool = False  # a whole JSON body (`.json`) rather than a stream (`.sse`)

    @property
    def body(self) -> bytes:
        return (DIR / f"{self.name}.{'json' if self.whole else 'sse'}").read_bytes()


FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}

TRANSCRIPTS = [
    Transcript("anthropic_thinking_tool", "anthropic", Expected(
        thinking="The user wants the weather in Paris for three days.",
        signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDONFORMANCE+sig/with=chars==",
        text="I'll check the forecast.",
        tools=[("toolu_01ConformanceWeather", "get_weather", {"city": "Paris \u00e9", "days": 3, "units": ["c"]})],
        stop="tool_use", input_tokens=412, cache_read=100, output_tokens=87)),
    Transcript("openai_tool_pieces", "openai", Expected(
        text="Checking both cities.",
        tools=[("call_ConfParis01", "get_weather", {"city": "Paris \u00e9", "days": 3, "units": ["c"]}),
               ("call_ConfOslo002", "get_weather", {"city": "Oslo", "days": 1})],
        stop="tool_use", input_tokens=233 - 128, cache_read=128, output_tokens=58)),
    Transcript("vllm_reasoning", "openai", Expected(
        thinking="Two plus two is four.", text="The answer is 4.", input_tokens=18, output_tokens=31)),
    Transcript("vllm_reasoning_field", "openai", Expected(
        thinking="Two plus two is four.", text="The answer is 4.", input_tokens=18, output_tokens=31)),
    Transcript("deepseek_reasoning", "openai", Expected(
        thinking="Two plus two is four.", text="The answer is 4.", input_tokens=10, cache_read=8, output_tokens=31)),
]
TRANSCRIPTS += [
    Transcript("anthropic_tool_no_input", "anthropic", Expected(
        tools=[("toolu_01ConformanceNow", "get_time", {})], stop="tool_use", input_tokens=50, output_tokens=12,
        pieces=False)),
    Transcript("openai_tool_calls_without_index", "openai", Expected(
        tools=[("call_NoIdxParis", "get_weather", {"city": "Paris"}), ("call_NoIdxOslo0", "get_weather", {"city": "Oslo"})],
        stop="tool_use", input_tokens=40, output_tokens=20, pieces=False)),
]

THINK_TOOL = TRANSCRIPTS[0].expected
WHOLE = [
    Transcript("anthropic_thinking_tool_whole", "anthropic", THINK_TOOL, whole=True),
    Transcript("vllm_reasoning_whole", "openai", Expected(
        thinking="Two plus two is four.", text="The answer is 4.", input_tokens=18, output_tokens=31), whole=True),
]
