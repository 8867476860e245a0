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
from collections.abc import Iterable, Mapping
from typing import Any

from tierwise.canonical import Request
from tierwise.privacy.finding import Finding
from tierwise.privacy.request_scan import tool_texts

NAME_ENTITIES = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "NRP"})
DETECTOR = "spread"  # the detector name of a finding added by ValueSpread
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what OpenAI and Anthropic accept as a tool's name
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
    (names, descriptions, schemas) every declared identifier; anywhere else its tool names only, those a
    provider accepts (`Edit`, `Workflow`: one token of letters, digits, `_` and `-`; Claude Code names them in
    its system prompt and in its own user-turn texts, `Do NOT use Read, Bash, Grep, Glob, Edit`).

    Schema keys and `required` entries are often a third party's (an MCP server's): exempting them
    everywhere let a tool whose schema declares `Alice Johnson`, or a `required` list of common given names,
    send the user's own mentions of those people in clear (the leak check looks for detected values only,
    so it did not look for them). Outside the tool definitions such a name stays a finding: redacted, and if
    the same word is left in a schema the leak check refuses the call (fails closed)."""

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
        return drop_identifiers(text, findings, self.identifiers if text in self.tool_texts else self.tool_names)


def drop_identifiers(text: str, findings: list[Any], identifiers: frozenset[str]) -> list[Any]:
    """`findings` without the name-like ones whose text is one of the request's identifiers."""
    if not identifiers or not findings:
        return findings
    kept = [f for f in findings if not (f.entity in NAME_ENTITIES and text[f.start:f.end] in identifiers)]
    return kept if len(kept) != len(findings) else findings


class ValueSpread:
    """Finds, in a text, the whole-word occurrences of known values (value -> entity) that no finding
    covers yet. Word boundaries as the leak check's: a value's edge that is a letter or digit must not
    touch another letter or digit. One pass of one alternation (longest values first) over a text that holds
    any of them."""

    __slots__ = ("entities", "values")

    def __init__(self, values: Mapping[str, str]) -> None:
        self.entities = dict(values)
        self.values = sorted((v for v in self.entities if v), key=len, reverse=True)

    def add(self, text: str, findings: Iterable[Any]) -> list[Any]:
        found = list(findings)
        present = [v for v in self.values if v in text] if text else None  # substring tests: most texts hold none
        if not present:
            return found
        pattern = re.compile("|".join(map(re.escape, present)))  # re's own cache keeps the compiled ones
        spans = sorted((f.start, f.end) for f in found)
        starts = [st for st, _ in spans]
        n = len(text)
        for m in pattern.finditer(text):
            start, end = m.span()
            value = m.group()
            if (start > 0 and value[0].isalnum() and text[start - 1].isalnum()) or (
                    end < n and value[-1].isalnum() and text[end].isalnum()):
                continue
            i = bisect_right(starts, start)
            if (i and spans[i - 1][1] > start) or (i < len(spans) and spans[i][0] < end):
                continue  # a finding covers it already
            found.append(Finding(self.entities[value], start, end, 1.0, DETECTOR))
        return found
