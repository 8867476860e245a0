"""The local model tier as a detector for free text (optional, off by default).

```yaml
privacy:
  llm_detector:
    enabled: true
    model: local            # a deployment with `locality: local` (checked at start-up)
    entities: [PERSON, ORGANIZATION, LOCATION, STREET_ADDRESS]
    timeout_s: 20
```

Before a request crosses to a remote provider, the texts redaction would rewrite are sent, in
one call (in chunks of `max_chars`), to the local deployment with an instruction to list every
sensitive span as JSON (`{"spans": [{"text": ..., "type": ...}]}`). Each listed text is then
looked up in every text of the request (exact occurrences on word boundaries), becomes a
finding of its type, and joins the pattern and NER findings (overlaps resolved as usual).
Only types in `entities` that some data class needs are kept; anything else the model says is
ignored, and nothing it says is ever sent anywhere.

Fail closed: an error or a timeout of the local call, or an answer that is not the JSON asked
for, counts as a detector failure: the remote call is refused (as when any detector fails).
The call goes to a local deployment, so it never crosses the boundary itself. It costs one
local model call per request that is about to leave (and none on the warm crossings after it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierwise.canonical import Message, Request, TextBlock
from tierwise.privacy.finding import Finding

PROMPT = (
    "You find personal and confidential data in text for a privacy filter. List every span of the "
    "user's text that is one of these types: {types}. Copy each span exactly as it is written. Answer "
    "with JSON only, no prose: {{\"spans\": [{{\"text\": \"<span>\", \"type\": \"<TYPE>\"}}]}}; "
    "answer {{\"spans\": []}} when there is none."
)
_SEPARATOR = "\n\n-----\n\n"
_MAX_SPAN = 300  # a listed "span" longer than this is not a value: ignored


class LlmDetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="ask a local model to list sensitive spans (one call per request "
                          "about to leave; fails closed)")
    model: str | None = Field(None, description="the local deployment that answers (locality: local)")
    entities: list[str] = Field(
        default_factory=lambda: ["PERSON", "ORGANIZATION", "LOCATION", "STREET_ADDRESS"],
        description="entity types the model may report (kept only where a data class needs them)")
    timeout_s: float = Field(20.0, gt=0, le=600, description="time limit of one call")
    max_chars: int = Field(20_000, ge=500, le=1_000_000, description="characters of text per call")
    max_tokens: int = Field(1024, ge=16, le=32_768, description="answer length limit per call")

    @model_validator(mode="after")
    def _model_named(self) -> LlmDetectorConfig:
        if self.enabled and not self.model:
            raise ValueError("model: required when llm_detector is enabled (a local deployment's name)")
        return self


class LlmDetectionFailed(Exception):
    """The local model could not be asked, or did not answer as asked. Holds no text."""


def _chunks(texts: list[str], max_chars: int) -> Iterable[str]:
    cur: list[str] = []
    size = 0
    for t in texts:
        for i in range(0, len(t), max_chars):
            piece = t[i:i + max_chars]
            if cur and size + len(piece) > max_chars:
                yield _SEPARATOR.join(cur)
                cur, size = [], 0
            cur.append(piece)
            size += len(piece) + len(_SEPARATOR)
    if cur:
        yield _SEPARATOR.join(cur)


def parse_spans(answer: str, allowed: frozenset[str]) -> list[tuple[str, str]]:
    """(type, text) pairs from the model's answer; raises LlmDetectionFailed if it is not the JSON
    asked for (a fenced code block around it is accepted)."""
    s = answer.strip()
    if s.startswith("```"):
        s = s.strip("`")
        s = s[s.find("{"):] if "{" in s else s
    a, b = s.find("{"), s.rfind("}")
    try:
        data = orjson.loads(s[a:b + 1]) if a >= 0 and b > a else None
    except orjson.JSONDecodeError:
        data = None
    spans = data.get("spans") if isinstance(data, dict) else None
    if not isinstance(spans, list):
        raise LlmDetectionFailed("the local model's answer is not the JSON asked for")
    out = []
    for item in spans:
        if not isinstance(item, dict):
            continue
        text, kind = item.get("text"), item.get("type")
        if isinstance(text, str) and isinstance(kind, str) and kind.upper() in allowed \
                and 0 < len(text.strip()) <= _MAX_SPAN:
            out.append((kind.upper(), text.strip()))
    return out


def _occurrences(text: str, value: str) -> Iterable[tuple[int, int]]:
    i = text.find(value)
    while i >= 0:
        j = i + len(value)
        if not (i > 0 and text[i - 1].isalnum() and value[0].isalnum()) and \
                not (j < len(text) and text[j].isalnum() and value[-1].isalnum()):
            yield i, j
        i = text.find(value, i + 1)


class LlmDetector:
    """Asks `deployment` (a local one) for the sensitive spans of a request's texts."""

    name = "llm"

    def __init__(self, cfg: LlmDetectorConfig, deployment: Any, wanted: frozenset[str]) -> None:
        self.cfg = cfg
        self.deployment = deployment
        self.entities = frozenset(e.upper() for e in cfg.entities) & wanted

    async def find(self, texts: list[str], ctx: Any) -> dict[str, list[Finding]]:
        """Findings per text (texts without any are left out). Raises LlmDetectionFailed."""
        if not self.entities or not texts:
            return {}
        listed: set[tuple[str, str]] = set()
        system = PROMPT.format(types=", ".join(sorted(self.entities)))
        for chunk in _chunks(texts, self.cfg.max_chars):
            req = Request(model=self.deployment.name, system=[TextBlock(system)],
                          messages=[Message("user", [TextBlock(chunk)])], max_tokens=self.cfg.max_tokens,
                          temperature=0.0)
            try:
                resp = await asyncio.wait_for(self.deployment.complete(req, ctx), self.cfg.timeout_s)
            except Exception as e:  # an error or a timeout: fail closed
                raise LlmDetectionFailed(f"the local model detector failed ({type(e).__name__})") from None
            answer = "".join(b.text for b in resp.content if isinstance(b, TextBlock))
            listed.update(parse_spans(answer, self.entities))
        out: dict[str, list[Finding]] = {}
        for t in texts:
            found = [Finding(kind, i, j, 0.65, self.name) for kind, value in listed for i, j in _occurrences(t, value)]
            if found:
                out[t] = found
        return out
