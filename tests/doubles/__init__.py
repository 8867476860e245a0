"""Protocol-faithful upstream doubles: real HTTP servers on 127.0.0.1 that speak the OpenAI
Chat Completions and Anthropic Messages wire formats, answer from a script, and inject faults.

    d = AnthropicDouble(); d.start()
    d.script(Fail(429, "slow down", retry_after=1), Reply(text="hi", usage=(5, 1)))
    ...  # point a provider at d.url; inspect d.requests[-1].body / .headers / .path
    d.stop()
"""

from tests.doubles.anthropic_double import AnthropicDouble
from tests.doubles.base import DoubleServer, RecordedRequest
from tests.doubles.openai_double import OpenAIDouble, embed
from tests.doubles.script import (
    Corrupt,
    CutStream,
    Delay,
    Fail,
    Gate,
    Hold,
    LateEnd,
    Raw,
    Reply,
    SlowStream,
    StreamError,
    ToolCall,
    Trickle,
)

__all__ = [
    "AnthropicDouble", "Corrupt", "CutStream", "Delay", "DoubleServer", "Fail", "Gate", "Hold", "LateEnd", "OpenAIDouble", "Raw", "RecordedRequest",
    "Reply",
    "SlowStream", "StreamError", "ToolCall", "Trickle", "embed",
]
