"""Reversible pseudonymisation: consistent placeholders per conversation, restored in answers.

A `Pseudonymizer` holds one conversation's mapping. `redact(text, findings)` replaces each
finding (anything with `.entity`, `.start`, `.end`, e.g. `tierwise.privacy.detect.Finding`)
with a placeholder `<ENTITY_N>`, or with a format-keeping surrogate for the entities listed in
`surrogate_entities`. The same value always gets the same stand-in within the conversation:
values are normalised first (emails: case and spaces; cards, phones, IBANs, SSNs: digits and
letters only; everything else: whitespace collapsed), so `Jane.Doe@X.com` and
`jane.doe@x.com` share `<EMAIL_ADDRESS_1>`.

`restore(text)` puts the originals back. Remote models do not always echo a placeholder
verbatim, so the restorer also accepts `PERSON_1`, `<person_1>`, `< PERSON_1 >`, `[PERSON_1]`
and `{PERSON_1}`; a placeholder that was never issued (`<PERSON_9>`) is left as it is.

Mapping storage: by default a Pseudonymizer lives only for one request; `state()` /
`from_state()` give a JSON-able snapshot that `tierwise.privacy.mapping_store` keeps
encrypted when a conversation spans requests.

Where the text lives in a canonical Request/Response is the job of
`tierwise.privacy.redact_canonical`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from typing import Any, Protocol

import regex

from tierwise.privacy.surrogates import make_surrogate


class FindingLike(Protocol):
    """What redaction needs from a detector's finding: the entity type and the span."""

    @property
    def entity(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


_COMPACT_ENTITIES = frozenset({"CREDIT_CARD", "PHONE_NUMBER", "IBAN_CODE", "US_SSN", "UK_NINO"})
# Brackets a model may wrap an echoed placeholder in, and how much space inside them.
# `\u003c` / `\u003e`: some JSON encoders (Go's, so Ollama's) escape angle brackets in
# tool-call arguments; the stream restorer sees that raw JSON text.
_OPEN = r"(?:[<\[{]|\\u003[cC])"
CLOSE = r"(?:[>\]}]|\\u003[eE])"
MAX_INNER_SPACE = 2
_BRACKET_LEN = 6  # the longest bracket form, `\u003c`
SPACES = rf"[ \t]{{0,{MAX_INNER_SPACE}}}"


def normalise(entity: str, value: str) -> str:
    """The key under which equal values of one entity type share a stand-in."""
    if entity == "EMAIL_ADDRESS":
        return "".join(value.split()).lower()
    if entity in _COMPACT_ENTITIES:
        return "".join(c for c in value if c.isalnum()).upper()
    return " ".join(value.split()).casefold()


def _trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of `words`, longest first, as a prefix trie: a flat alternation of
    thousands of surrogates costs the engine one try per word at every position; a trie, one
    try per distinct next character."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [regex.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        ends_here = "" in node
        if len(branches) == 1 and not ends_here:
            return branches[0]
        alt = "(?:" + "|".join(branches) + ")"
        return alt + "?" if ends_here else alt  # greedy: the longer surrogate is tried first

    return build(trie)


class Pseudonymizer:
    """One conversation's reversible mapping between sensitive values and their stand-ins."""

    __slots__ = (
        "_by_key",
        "_originals",
        "_counters",
        "_surrogates",
        "_surrogate_entities",
        "_secret",
        "_pattern",
        "_max_len",
        "max_surrogates",
    )

    def __init__(
        self, surrogate_entities: Iterable[str] = (), secret: bytes | None = None, max_surrogates: int = 256
    ) -> None:
        self._by_key: dict[tuple[str, str], str] = {}  # (entity, normalised value) -> stand-in
        self._originals: dict[tuple[str, int], str] = {}  # (ENTITY, n) -> original value
        self._surrogates: dict[str, str] = {}  # surrogate text -> original value
        self._counters: dict[str, int] = {}
        self._surrogate_entities = frozenset(surrogate_entities)
        self._secret = secret if secret is not None else os.urandom(32)
        self._pattern: regex.Pattern[str] | None = None
        self._max_len = 0
        # Surrogates are matched as literal text, so each one grows the restore pattern (its
        # compile cost grows with them); past this many, new values get placeholders.
        self.max_surrogates = max_surrogates

    def __repr__(self) -> str:  # never show values
        return f"Pseudonymizer(<{len(self._by_key)} values>)"

    # ------------------------------------------------------------------ redaction

    def stand_in(self, entity: str, value: str) -> str:
        """The placeholder or surrogate for `value`, issuing a new one on first sight."""
        entity = entity.upper()
        key = (entity, normalise(entity, value))
        token = self._by_key.get(key)
        if token is not None:
            return token
        token = None
        if entity in self._surrogate_entities and len(self._surrogates) < self.max_surrogates:
            token = self._new_surrogate(entity, value, key[1])
        if token is None:
            n = self._counters.get(entity, 0) + 1
            self._counters[entity] = n
            self._originals[(entity, n)] = value
            token = f"<{entity}_{n}>"
        self._by_key[key] = token
        self._pattern = None
        return token

    def _new_surrogate(self, entity: str, value: str, norm: str) -> str | None:
        for attempt in range(8):
            fake = make_surrogate(entity, value, self._secret, attempt)
            if fake is None:
                return None
            # A surrogate must not collide with a real value or another surrogate.
            if fake not in self._surrogates and normalise(entity, fake) != norm:
                self._surrogates[fake] = value
                return fake
        return None

    def redact(self, text: str, findings: Iterable[FindingLike]) -> str:
        """`text` with every finding replaced by its stand-in (overlaps: the longer span wins)."""
        spans = sorted(
            ((f.start, f.end, f.entity) for f in findings if 0 <= f.start < f.end <= len(text)),
            key=lambda s: (s[0], -(s[1] - s[0])),
        )
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end, entity in spans:
            if start < pos:  # overlaps an earlier, longer-or-equal span
                continue
            out.append(text[pos:start])
            out.append(self.stand_in(entity, text[start:end]))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    # ------------------------------------------------------------------ restoration

    @property
    def empty(self) -> bool:
        return not self._by_key

    def pattern(self) -> regex.Pattern[str] | None:
        """One regex matching every issued stand-in and the mangled forms of the placeholders."""
        if self._pattern is None and not self.empty:
            alts: list[str] = []
            max_len = 0
            if self._counters:
                entities = sorted(self._counters, key=len, reverse=True)
                digits = len(str(max(self._counters.values())))
                sp = SPACES
                ents = "|".join(regex.escape(e) for e in entities)
                # Group "e" = entity, "n" = number. The lookarounds keep `PERSON_1` from
                # matching inside `PERSON_12` or `SALESPERSON_1` (but do match after a JSON
                # escape such as `\nPERSON_1` in raw tool-call argument text).
                alts.append(
                    rf"(?:{_OPEN}{sp})?(?<![A-Za-z0-9_](?<!\\[nrtbf])(?<!\\u003[cC]))"
                    rf"(?P<e>{ents})_(?P<n>\d{{1,{digits}}})(?!\d)(?:{sp}(?P<c>{CLOSE}))?"
                )
                max_len = (
                    _BRACKET_LEN
                    + MAX_INNER_SPACE
                    + max(len(e) for e in entities)
                    + 1
                    + digits
                    + MAX_INNER_SPACE
                    + _BRACKET_LEN
                )
            if self._surrogates:
                alts.append("(?P<s>" + _trie_regex(self._surrogates) + ")")
                max_len = max(max_len, max(map(len, self._surrogates)))
            self._pattern = regex.compile("|".join(alts), regex.IGNORECASE)
            self._max_len = max_len
        return self._pattern

    @property
    def max_match_len(self) -> int:
        """The longest text a stand-in (or a mangled placeholder) can span: the stream hold-back bound."""
        self.pattern()
        return self._max_len

    def original_for(self, m: regex.Match[str]) -> str | None:
        """The original value for a match of `pattern()`, or None for an invented placeholder."""
        s = m.group("s") if "s" in m.re.groupindex else None
        if s:
            # Surrogates are matched case-insensitively; look up the exact text first.
            hit = self._surrogates.get(s)
            if hit is None:
                low = s.casefold()
                hit = next((v for k, v in self._surrogates.items() if k.casefold() == low), None)
            return hit
        return self._originals.get((m.group("e").upper(), int(m.group("n"))))

    def restore(self, text: str) -> str:
        """`text` with every echoed stand-in replaced by its original; unknown ones untouched."""
        pat = self.pattern()
        if pat is None or not text:
            return text

        def sub(m: regex.Match[str]) -> str:
            orig = self.original_for(m)
            return m.group(0) if orig is None else orig

        return pat.sub(sub, text)

    def restore_json_fragment(self, text: str) -> str:
        """Like `restore`, for raw JSON text: restored values are escaped for a JSON string."""
        pat = self.pattern()
        if pat is None or not text:
            return text

        def sub(m: regex.Match[str]) -> str:
            orig = self.original_for(m)
            return m.group(0) if orig is None else json.dumps(orig, ensure_ascii=False)[1:-1]

        return pat.sub(sub, text)

    # ------------------------------------------------------------------ persistence

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot holding the values in clear: only ever store it encrypted."""
        return {
            "v": 1,
            "secret": self._secret.hex(),
            "surrogate_entities": sorted(self._surrogate_entities),
            "counters": self._counters,
            "by_key": [[e, k, t] for (e, k), t in self._by_key.items()],
            "originals": [[e, n, v] for (e, n), v in self._originals.items()],
            "surrogates": self._surrogates,
            "max_surrogates": self.max_surrogates,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Pseudonymizer:
        p = cls(
            state.get("surrogate_entities", ()),
            bytes.fromhex(state["secret"]),
            int(state.get("max_surrogates", 256)),
        )
        p._counters = {str(k): int(v) for k, v in state["counters"].items()}
        p._by_key = {(e, k): t for e, k, t in state["by_key"]}
        p._originals = {(e, int(n)): v for e, n, v in state["originals"]}
        p._surrogates = dict(state["surrogates"])
        return p

    def fingerprint(self) -> str:
        """A keyed digest of the mapping (for logs and tests: says whether it changed, not what it holds)."""
        blob = json.dumps(self.state(), sort_keys=True).encode()
        return hmac.new(self._secret, blob, hashlib.sha256).hexdigest()[:16]


class RedactMemo:
    """A Pseudonymizer's `redact` remembered per text, at most `limit` texts: the next remote call of the same
    request (a cascade's next tier, a judge, a retry) re-sends mostly the same texts."""

    __slots__ = ("p", "cache", "limit")

    def __init__(self, p: Pseudonymizer, cache: dict[str, str], limit: int) -> None:
        self.p = p
        self.cache = cache
        self.limit = limit

    def redact(self, text: str, findings: Any) -> str:
        got = self.cache.get(text)
        if got is None:
            got = self.p.redact(text, findings)
            if len(self.cache) < self.limit:
                self.cache[text] = got
        return got
