"""A request's own vocabulary, and every place a detected value occurs in it.

Two things the boundary needs so that redaction and its leak check agree (boundary.py):

- `declared_identifiers`: the names a request itself defines for its program — tool names and the
  keys and `required` entries of their input schemas (`DeclaredNames`: where each kind is exempt). A name detector reading `Edit` (Claude Code's
  file-editing tool, and a Hungarian given name) or `Workflow` as a person finds the tool, not a
  person; redaction cannot rewrite a tool's name anyway (the model must call it by that name), so such
  a finding made every request that mentions its own tool fail the leak check. Only entities found
  from context (names, organisations, places, groups) are dropped this way: a structured value
  (an e-mail address, a card number) that equals an identifier is still a value.
- `ValueSpread`: every whole-word occurrence, in a text about to be redacted, of a value the
  detectors found anywhere in the request. Name detection depends on context (`Takes precedence`
  at a sentence start reads as a name, `- Takes a task_id` does not), while the leak check looks
  for each detected value in the whole outgoing body: a value redacted where it was found and left
  where it was not refused the call. Redacting every occurrence also keeps the same value under the
  same placeholder everywhere, as the mapping promises.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from ahocorasick_rs import AhoCorasick, BytesAhoCorasick, MatchKind

from tierwise.canonical import Request, ToolUseBlock
from tierwise.privacy.finding import Finding
from tierwise.privacy.request_scan import tool_texts

NAME_ENTITIES = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "NRP"})
DETECTOR = "spread"  # the detector name of a finding added by ValueSpread
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what OpenAI and Anthropic accept as a tool's name
MAX_SPREAD_MATCHES = 100_000  # occurrences of known values one request's redaction examines (ValueSpread)
_NAME_MEMBER = b'"name":"'
WINDOW_CHARS = 1 << 16  # match starts per window of the searches below: their match lists stay this small
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_SCHEMA_NODES = 100_000  # schema nodes walked per request (a request is bounded; so is this walk)


def declared_identifiers(req: Request) -> frozenset[str]:
    """Tool names, and the property names, other keys and `required` entries of their input schemas."""
    names: set[str] = set()
    budget = [MAX_SCHEMA_NODES]
    for tool in req.tools:
        names.add(tool.name)
        _schema_names(tool.input_schema, names, budget)
    return frozenset(names)


def _schema_names(node: Any, out: set[str], budget: list[int]) -> None:
    stack = [node]
    while stack and budget[0] > 0:
        budget[0] -= 1
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                out.add(k)
                if k == "required" and isinstance(v, list):
                    out.update(x for x in v if isinstance(x, str))
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(n, list):
            stack.extend(x for x in n if isinstance(x, (dict, list)))


class DeclaredNames:
    """Where a request's declared names exempt a name-like finding: in the texts of its tool definitions
    (names, descriptions, schemas) every declared identifier; anywhere else a tool's name (one a provider
    accepts: one token of letters, digits, `_` and `-`) where the mention reads as the tool's
    (`names_the_tool`): Claude Code names its tools in its system prompt and its own user-turn texts
    (`Do NOT use Read, Bash, Grep, Glob, Edit`, `the Skill tool`).

    Schema keys and `required` entries are often a third party's (an MCP server's): exempting them
    everywhere let a tool whose schema declares `Alice Johnson`, or a `required` list of common given names,
    send the user's own mentions of those people in clear (the leak check looks for detected values only,
    so it did not look for them). Tool names exempted everywhere did the same for a tool named `Jordan` or
    `Paris` (session 23). Outside the tool definitions such a name stays a finding: redacted, every other
    occurrence with it (ValueSpread); the tool keeps its name where the API needs it, in the tool list and
    tool calls (`tool_name_slots`, which the leak check allows), and a copy left anywhere else refuses the
    call (fails closed)."""

    __slots__ = ("identifiers", "tool_names", "tool_texts", "_seen")

    def __init__(self) -> None:
        self.identifiers: frozenset[str] = frozenset()
        self.tool_names: frozenset[str] = frozenset()
        self.tool_texts: frozenset[str] = frozenset()
        self._seen: list[int] = []  # ids of the tool lists read (a guard may see several requests)

    def add(self, req: Request) -> None:
        if not req.tools or id(req.tools) in self._seen:
            return
        self._seen.append(id(req.tools))
        self.identifiers |= declared_identifiers(req)
        self.tool_names |= frozenset(t.name for t in req.tools if TOOL_NAME.fullmatch(t.name))
        self.tool_texts |= frozenset(t for _, t in tool_texts(req))

    def drop(self, text: str, findings: list[Any]) -> list[Any]:
        """`findings` of `text` without the name-like ones a declared name exempts there."""
        if not self.identifiers or not findings:
            return findings
        if text in self.tool_texts:
            return drop_identifiers(text, findings, self.identifiers)
        names = self.tool_names
        named: dict[str, bool] = {}  # tool name -> whether this text names the tool by it
        kept = []
        for f in findings:
            word = text[f.start:f.end]
            if f.entity in NAME_ENTITIES and word in names:
                if word not in named:
                    named[word] = names_the_tool(text, word, names)
                if named[word]:
                    continue
            kept.append(f)
        return kept if len(kept) != len(findings) else findings


_NAME_SHAPED = re.compile(r"[A-Z][a-z]+")  # how a person's or a place's name is written (`Jordan`, `Edit`)
_TOOL_WORD_BEFORE = re.compile(r"\btools?\s+$", re.IGNORECASE)
_TOOL_WORD_AFTER = re.compile(r"\s+tools?\b", re.IGNORECASE)
_LIST_BEFORE = re.compile(r"([A-Za-z0-9_-]+)(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*/\s*)$")
_LIST_AFTER = re.compile(r"(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*/\s*)([A-Za-z0-9_-]+)")
_QUOTES = frozenset("`'\"")
_CONTEXT = 24  # characters read on each side of a mention


def names_the_tool(text: str, word: str, tool_names: frozenset[str]) -> bool:
    """Whether `text`, outside the tool definitions, uses the tool name `word` as the tool's: a name not
    written as a person's or a place's always (`NotebookEdit`, `web_search`); a name-shaped one (`Edit`,
    `Jordan`) when one of its mentions in the text is quoted (`` `Edit` ``), next to the word `tool`
    (`the Skill tool`) or listed with another tool's name (`Read, Bash, Edit`). One such mention makes the
    text the program's own about its tools (Claude Code's `Use the Edit tool … Edit never creates files`);
    a user's `Please email Jordan` has none."""
    if not _NAME_SHAPED.fullmatch(word):
        return True
    for m in re.finditer(r"(?<![^\W_])" + re.escape(word) + r"(?![^\W_])", text):
        start, end = m.span()
        before, after = text[max(0, start - _CONTEXT):start], text[end:end + _CONTEXT]
        if before[-1:] in _QUOTES and before[-1:] == after[:1]:
            return True
        if _TOOL_WORD_BEFORE.search(before) or _TOOL_WORD_AFTER.match(after):
            return True
        for listed in (_LIST_BEFORE.search(before), _LIST_AFTER.match(after)):
            if listed and listed.group(1) != word and listed.group(1) in tool_names:
                return True
    return False


def tool_name_slots(req: Request, values: Mapping[str, str]) -> dict[str, int]:
    """For each detected name-like value (value -> entity) that is also a tool's name: how often `req` sends it
    where the API needs it written as is (the JSON member `"name":"…"` of a tool definition, a tool call or
    `tool_choice`), the leak check's allowance. A structured value (a number, an address) gets none: a tool
    named like one still refuses the call; so does a call of a tool the request does not declare."""
    wanted = {t.name for t in req.tools if values.get(t.name) in NAME_ENTITIES}
    if not wanted:
        return {}  # the usual case: no detected value is a declared tool's name
    names = [t.name for t in req.tools]
    names += [b.name for m in req.messages for b in m.content if isinstance(b, ToolUseBlock)]
    if req.tool_choice is not None and req.tool_choice.name:
        names.append(req.tool_choice.name)
    slots: dict[str, int] = {}
    for n in names:
        if n in wanted:
            slots[n] = slots.get(n, 0) + 1
    return slots


def drop_identifiers(text: str, findings: list[Any], identifiers: frozenset[str]) -> list[Any]:
    """`findings` without the name-like ones whose text is one of the request's identifiers."""
    if not identifiers or not findings:
        return findings
    kept = [f for f in findings if not (f.entity in NAME_ENTITIES and text[f.start:f.end] in identifiers)]
    return kept if len(kept) != len(findings) else findings


_DIGIT_OR_AT = re.compile(r"[\d@]")


def anywhere(value: str) -> bool:
    """Is `value` looked for inside words too (no word boundary)? A structured value -- a digit or `@` and at least
    8 letters and digits: a card, IBAN, id, phone, address, key -- is one no text holds by chance, while a name
    (`Ann` in `Annual`) is. A remote model that writes `9<CREDIT_CARD_1>5` has the client's history hold
    `94111 1111 1111 11115` (no detector reads a card there): on word boundaries alone the next turn sent the card
    (session 35, privstream35)."""
    return _DIGIT_OR_AT.search(value) is not None and sum(c.isalnum() for c in value) >= 8


class ValueSpread:
    """Finds, in a text, the occurrences of known values (value -> entity) that no finding covers yet.
    Word boundaries as the leak check's: a value's edge that is a letter or digit must not touch another
    letter or digit, unless the value is a structured one (`anywhere`).

    One Aho-Corasick pass per text over all the request's values (leftmost, longest first): a substring
    test per value and text, then a regex alternation of the values present, cost values × characters,
    ~0.9 s for a text of 8,000 e-mail addresses (87 KB) and hours for the 4,000,000 characters a request
    may carry. At most MAX_SPREAD_MATCHES matches are examined per request (a two-letter name repeated over
    4 MB is 1.3 million, ~3 s on the event loop to find and redact): the occurrences past it are left as
    written, and the leak check then refuses the remote call (fails closed)."""

    __slots__ = ("entities", "values", "budget", "_ac", "_longest", "_anywhere")

    def __init__(self, values: Mapping[str, str]) -> None:
        self.entities = dict(values)
        # A value holding a lone surrogate cannot be searched for (the automaton reads UTF-8); the leak check,
        # which reads the encoded body, still looks for it.
        self.values = [v for v in self.entities if v and not _SURROGATE.search(v)]
        self.budget = MAX_SPREAD_MATCHES  # matches this request may still examine
        self._ac = AhoCorasick(self.values, matchkind=MatchKind.LeftmostLongest) if self.values else None
        self._longest = max(map(len, self.values), default=1)
        self._anywhere = [anywhere(v) for v in self.values]

    def add(self, text: str, findings: Iterable[Any]) -> list[Any]:
        found = list(findings)
        if self._ac is None or not text or self.budget <= 0:
            return found
        spans = sorted((f.start, f.end) for f in found)
        starts = [st for st, _ in spans]
        n = len(text)
        budget = self.budget
        grown: list[tuple[int, int, str]] = []
        for index, start, end in self._matches(text):
            if budget <= 0:
                break  # the rest stay as written: the leak check refuses the call
            budget -= 1
            value = self.values[index]
            inside = self._anywhere[index]
            if not inside and ((start > 0 and value[0].isalnum() and text[start - 1].isalnum()) or (
                    end < n and value[-1].isalnum() and text[end].isalnum())):
                continue
            i = bisect_right(starts, start)
            if (i and spans[i - 1][1] > start) or (i < len(spans) and spans[i][0] < end):
                if inside and not any(s <= start and end <= e for s, e in spans):
                    grown.append((start, end, self.entities[value]))  # a finding covers part of it only
                continue  # a finding covers it already
            found.append(Finding(self.entities[value], start, end, 1.0, DETECTOR))
        self.budget = budget
        for start, end, entity in grown:  # one finding over the value and what overlaps it (redacts more, never less)
            over = [f for f in found if f.start < end and start < f.end]
            s, e = min([start, *(f.start for f in over)]), max([end, *(f.end for f in over)])
            found = [f for f in found if not (f.start < e and s < f.end)]
            found.append(Finding(entity, s, e, 1.0, DETECTOR))
        return found

    def _matches(self, text: str) -> Iterator[tuple[int, int, int]]:
        """The automaton's leftmost-longest matches of `text`, in order, found window by window so that a
        text of a million matches is never one list of them (the budget stops the caller long before).
        A window's matches that start before its last `longest - 1` characters are the whole text's:
        every value that could start there ends inside the window. The next window starts where the last
        match kept ended (or where the kept starts end, if none went past them)."""
        assert self._ac is not None
        step = max(WINDOW_CHARS, 4 * self._longest)
        n = len(text)
        pos = 0
        while pos < n:
            stop = pos + step
            piece = text[pos:stop + self._longest - 1]
            try:
                got = self._ac.find_matches_as_indexes(piece)
            except UnicodeEncodeError:  # lone surrogates: the same length in code points, and in no value
                got = self._ac.find_matches_as_indexes(_SURROGATE.sub("\ufffd", piece))
            nxt = stop
            for index, start, end in got:
                if pos + start >= stop:
                    break
                nxt = max(nxt, pos + end)
                yield index, pos + start, pos + end
            pos = nxt


def values_in_body(body: bytes, values: Iterable[str], allowed: Mapping[str, int] | None = None) -> list[str]:
    """The values (as JSON string content) that occur in `body` on word boundaries: the leak check's
    search, one overlapping Aho-Corasick pass over the body for all of them. It was a `bytes.find` loop per
    value, values × bytes: 1.3 s for 8,000 values in a 0.5 MB body, on the event loop, and ~80 s for the
    64,000 e-mail addresses a request of 4,000,000 characters can hold.

    The pass goes window by window (`WINDOW_CHARS` bytes of match starts, read with the `longest - 1`
    bytes after them so that every match starting in the window is whole) and stops once every value is
    found: one list of every match of a value repeated 1.3 million times held 159 MiB.

    `allowed` (value -> count, `tool_name_slots`): a value that is also a tool's name may stand that many
    times as a whole JSON member `"name":"<value>"` (a tool definition, a tool call); one more, or any
    other occurrence, is found (a quote inside a JSON string is escaped, so text cannot forge the member)."""
    needles: dict[bytes, list[str]] = {}
    for v in values:
        n = orjson.dumps(v)[1:-1]
        if n:
            needles.setdefault(n, []).append(v)
    if not needles or not body:
        return []
    patterns = list(needles)
    slots = [sum(allowed.get(v, 0) for v in needles[n]) if allowed else 0 for n in patterns]
    inside = [any(anywhere(v) for v in needles[n]) for n in patterns]
    automaton = BytesAhoCorasick(patterns)
    longest = max(map(len, patterns))
    step = max(WINDOW_CHARS, 4 * longest)
    view = memoryview(body)
    hit: set[int] = set()
    for pos in range(0, len(body), step):
        stop = pos + step
        for index, i, j in automaton.find_matches_as_indexes(view[pos:stop + longest - 1], overlapping=True):
            i += pos
            if index in hit or i >= stop:
                continue  # found already, or the next window's (it reads this one's tail again)
            j += pos
            n = patterns[index]
            before, after = body[i - 1:i], body[j:j + 1]
            if inside[index] or (not (before.isalnum() and n[:1].isalnum()) and not (after.isalnum() and n[-1:].isalnum())):
                if slots[index] and after == b'"' and body[i - len(_NAME_MEMBER):i] == _NAME_MEMBER:
                    slots[index] -= 1  # a tool's name where the API needs it
                    continue
                hit.add(index)
        if len(hit) == len(patterns):
            break
    return [v for index in sorted(hit) for v in needles[patterns[index]]]
