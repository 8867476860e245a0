"""Task triage: a task type and a complexity estimate for a request.

Task types: extraction, classification, summarisation, short_code, multi_step_reasoning,
knowledge_question, creative_writing, chat, agent_turn — plus any the user adds with a few examples.

Two signals, combined: cheap lexical cues (a request with tools or tool results is an agent turn;
"summarise", "extract", "classify", code fences, "step by step" ...) and, when an embedder is given
(the shared all-MiniLM-L6-v2 of `tierwise.routers.features.Embedder`), the cosine to each type's
prototype (the mean embedding of its examples). Complexity is four parts in [0, 1] (steps,
constraints, broad knowledge, context length) and their mean. Nothing here runs unless a route
asks for it (the `reflective` policy, or a rule that matches on `task_type` / `complexity`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick_rs
import numpy as np

from tierwise.canonical import Request, ToolResultBlock, ToolUseBlock

TASK_TYPES = ("extraction", "classification", "summarisation", "short_code", "multi_step_reasoning",
              "knowledge_question", "creative_writing", "chat", "agent_turn")
MAX_TRIAGE_CHARS = 4000  # the classifier reads the head of the last user message only
HEADER = "x-tierwise-task-type"  # a client may state the type itself
_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,39}\Z")

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "extraction": ("Extract all the names and dates from this text.", "Pull the invoice number and total out of "
                   "this email as JSON.", "List every email address mentioned in the document below."),
    "classification": ("Is this review positive or negative?", "Classify this ticket as bug, feature or question.",
                       "Which category does this message belong to: spam or not spam?"),
    "summarisation": ("Summarize the following article in three sentences.", "Give me a TL;DR of this thread.",
                      "Condense these meeting notes into key points."),
    "short_code": ("Write a Python function that reverses a string.", "Fix the bug in this JavaScript snippet.",
                   "Write a SQL query that counts orders per customer."),
    "multi_step_reasoning": ("A train leaves at 3pm going 60 mph; when does it catch the other train? Think step "
                             "by step.", "If she buys 3 apples at $2 each and sells them for $10, what is her "
                             "profit?", "Solve this logic puzzle and explain each step."),
    "knowledge_question": ("What is the capital of Australia?", "Which enzyme breaks down starch?\nA. amylase\n"
                           "B. lipase\nC. pepsin\nD. trypsin\nAnswer:", "Who wrote The Brothers Karamazov?"),
    "creative_writing": ("Write a poem about the sea.", "Write a short story about a robot who learns to paint.",
                         "Compose a catchy slogan for a coffee shop."),
    "chat": ("Hi! How are you today?", "Thanks, that helps a lot.", "Can you recommend a good movie for tonight?"),
    "agent_turn": ("Use the tools to find the file and edit it.", "Call the search tool and then read the result.",
                   "Run the tests and fix whatever fails."),
}

# Lexical cues: whole words or phrases, found in one pass by an Aho-Corasick automaton over the
# lower-cased text (a dozen case-insensitive regex alternations took ~10 ms on a 4 kB prompt).
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "summarisation": ("summarise", "summarize", "summary", "tl;dr", "tldr", "condense", "key points", "recap"),
    "extraction": ("extract", "pull out", "list all", "list every", "find all", "parse"),
    "classification": ("classify", "categorise", "categorize", "which category", "label it", "label this",
                       "positive or negative", "sentiment"),
    "short_code": ("python", "javascript", "typescript", "sql", "regex", "function", "bug", "compile", "def",
                   "class", "code", "script"),
    "multi_step_reasoning": ("step by step", "how many", "how much", "calculate", "prove", "solve", "puzzle"),
    "creative_writing": ("poem", "story", "haiku", "lyrics", "slogan", "fiction", "essay", "write a song",
                         "write a letter"),
    "_step": ("then", "after that", "next", "finally", "step"),
    "_constraint": ("must", "should", "exactly", "at most", "at least", "no more than", "only", "without",
                    "do not", "don't", "format", "json"),
}
_KW_LIST = [(t, w) for t, ws in _KEYWORDS.items() for w in ws]
_AC = ahocorasick_rs.AhoCorasick([w for _, w in _KW_LIST], matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
_OPTIONS = re.compile(r"\n[A-D]\.\s")
_CHAT_START = re.compile(r"(hi|hello|hey|thanks|thank you|good (morning|evening))\b")
_QUESTION_START = re.compile(r"(what|who|when|where|which|why)\b")
_MONEY_OR_PCT = re.compile(r"\d\s*%|\$\s*\d")
_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:\d+[.)]|[-*\u2022])[ \t]")
_CONSTRAINT_N = re.compile(r"\bin \d+ (?:words|sentences|lines)\b")
_PROPER = re.compile(r"\b[A-Z][a-z]{2,}")


def _word_at(text: str, start: int, end: int) -> bool:
    return (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())


def lexical_counts(text: str) -> dict[str, float]:
    """Keyword hits per cue (task types, and `_step` / `_constraint` for complexity) in lower-cased text."""
    low = text.lower()
    counts: dict[str, float] = {}
    for idx, a, b in _AC.find_matches_as_indexes(low):
        if _word_at(low, a, b):
            t = _KW_LIST[idx][0]
            counts[t] = counts.get(t, 0.0) + 1.0
    if "```" in text:
        counts["short_code"] = counts.get("short_code", 0.0) + 2.0
    if _MONEY_OR_PCT.search(text):
        counts["multi_step_reasoning"] = counts.get("multi_step_reasoning", 0.0) + 1.0
    if len(_OPTIONS.findall(text)) >= 3 or text.rstrip().endswith("Answer:") or _QUESTION_START.match(low):
        counts["knowledge_question"] = counts.get("knowledge_question", 0.0) + 1.0
    if _CHAT_START.match(low):
        counts["chat"] = counts.get("chat", 0.0) + 1.0
    counts["_step"] = counts.get("_step", 0.0) + len(_LIST_ITEM.findall(text))
    counts["_constraint"] = counts.get("_constraint", 0.0) + len(_CONSTRAINT_N.findall(low))
    return counts


@dataclass(frozen=True)
class Complexity:
    steps: float
    constraints: float
    knowledge: float
    context: float

    @property
    def score(self) -> float:
        return round((self.steps + self.constraints + self.knowledge + self.context) / 4.0, 4)

    def to_dict(self) -> dict[str, float]:
        return {"steps": self.steps, "constraints": self.constraints, "knowledge": self.knowledge,
                "context": self.context, "score": self.score}


@dataclass(frozen=True)
class Triage:
    task_type: str
    confidence: float
    complexity: Complexity
    signals: dict[str, float] = field(default_factory=dict)


def complexity_of(text: str, total_chars: int, counts: dict[str, float] | None = None) -> Complexity:
    c = lexical_counts(text) if counts is None else counts
    steps = min(1.0, c.get("_step", 0.0) / 5.0)
    constraints = min(1.0, c.get("_constraint", 0.0) / 4.0)
    knowledge = min(1.0, len(_PROPER.findall(text)) / 8.0)
    context = min(1.0, total_chars / 32_000.0)  # about 8k tokens
    return Complexity(round(steps, 3), round(constraints, 3), round(knowledge, 3), round(context, 3))


class Triager:
    """Classifies requests; `embed` (texts -> unit vectors) is optional and used only when given."""

    def __init__(self, extra_types: Mapping[str, Sequence[str]] | None = None,
                 embed: Callable[[Sequence[str]], np.ndarray] | None = None, lexical_weight: float = 0.35) -> None:
        self.examples: dict[str, tuple[str, ...]] = dict(PROTOTYPES)
        for name, examples in (extra_types or {}).items():
            if not _NAME.match(name) or not examples:
                raise ValueError(f"task type {name!r}: a lower-case name (letters, digits, _ or -) and examples")
            self.examples[name] = tuple(examples)
        self.types = tuple(self.examples)
        self.embed = embed
        self.lexical_weight = lexical_weight
        self._protos: np.ndarray | None = None

    def _prototypes(self) -> np.ndarray:
        if self._protos is None:
            assert self.embed is not None
            rows = []
            for t in self.types:
                v = np.asarray(self.embed(list(self.examples[t])), dtype=np.float32).mean(axis=0)
                rows.append(v / (np.linalg.norm(v) or 1.0))
            self._protos = np.stack(rows)
        return self._protos

    def lexical(self, req: Request, text: str) -> tuple[dict[str, float], dict[str, float]]:
        """(votes per task type, raw counts including the complexity cues)."""
        counts = lexical_counts(text)
        votes = {t: min(v, 3.0) for t, v in counts.items() if not t.startswith("_") and v > 0}
        if req.tools or any(isinstance(b, (ToolUseBlock, ToolResultBlock)) for m in req.messages for b in m.content):
            votes["agent_turn"] = 2.0
        return votes, counts

    def classify(self, req: Request, *, vector: np.ndarray | None = None) -> Triage:
        full = req.last_user_text() or ""
        text = full[:MAX_TRIAGE_CHARS].strip()
        votes, counts = self.lexical(req, text)
        scores = np.zeros(len(self.types), dtype=np.float64)
        for i, t in enumerate(self.types):
            scores[i] += self.lexical_weight * votes.get(t, 0.0)
        if vector is None and self.embed is not None and text:
            vector = np.asarray(self.embed([text]), dtype=np.float32)[0]
        if vector is not None:
            scores += self._prototypes() @ vector
        elif not votes:
            scores[self.types.index("chat") if len(text) < 200 else self.types.index("knowledge_question")] += 0.1
        if "agent_turn" in votes:  # tools on the request decide it: an agent's turn whatever the words say
            scores[self.types.index("agent_turn")] += 10.0
        best = int(np.argmax(scores))
        ordered = np.sort(scores)
        margin = float(ordered[-1] - ordered[-2]) if len(ordered) > 1 else 1.0
        return Triage(self.types[best], round(min(1.0, margin), 4),
                      complexity_of(text, sum(len(m.text()) for m in req.messages), counts), votes)


_DEFAULT = Triager()


def triage_of(req: Request, ctx: Any = None) -> Triage:
    """The request's triage, computed once per request (kept on the context's notes)."""
    notes = getattr(ctx, "notes", None)
    if notes is not None and "triage" in notes:
        return notes["triage"]  # type: ignore[no-any-return]
    services = getattr(ctx, "services", None)
    triager = getattr(services, "triager", None) or _DEFAULT
    t = triager.classify(req)
    stated = (req.headers.get(HEADER) or "").strip().lower()
    if stated and _NAME.match(stated) and stated in triager.types:
        t = Triage(stated, 1.0, t.complexity, {**t.signals, "stated": 1.0})
    if notes is not None:
        notes["triage"] = t
        notes["task_type"] = t.task_type
        notes["complexity"] = t.complexity.score
    return t


def task_type_of(req: Request, ctx: Any = None) -> str:
    return triage_of(req, ctx).task_type
