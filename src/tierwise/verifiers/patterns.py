"""Text pattern verifiers: a regex that must (or must not) match; required, alternative and
forbidden substrings. Cheap enough to run first in any chain.

The configured pattern can backtrack catastrophically on some answers (`(a+)+$` against a
long run of `a`), and the answer is model output: it runs on the `regex` module (the `re`
syntax; it releases the GIL while matching and stops at a timeout) in a worker thread, and a
match that runs out of time is a failed verdict.
"""

from __future__ import annotations

import regex

from tierwise.canonical import Request, Response
from tierwise.verifiers.base import Verdict, VerifyContext
from tierwise.verifiers.offload import REGEX_TIMEOUT_S, off_loop


class RegexVerifier:
    def __init__(self, pattern: str, *, must_match: bool = True, ignore_case: bool = False,
                 multiline: bool = False, dotall: bool = False, name: str = "regex") -> None:
        flags = (regex.IGNORECASE if ignore_case else 0) | (regex.MULTILINE if multiline else 0) | (
            regex.DOTALL if dotall else 0)
        self.pattern = regex.compile(pattern, flags | regex.VERSION0)
        self.must_match = must_match
        self.name = name
        self.timeout = REGEX_TIMEOUT_S

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        return await off_loop(self.check, resp.text(), name=self.name)

    def check(self, text: str) -> Verdict:
        try:
            found = self.pattern.search(text, timeout=self.timeout)
        except TimeoutError:
            return Verdict(False, f"pattern {self.pattern.pattern!r} took longer than {self.timeout:g}s on this answer",
                           0.0, self.name, {"error": "timeout"})
        if self.must_match and not found:
            return Verdict(False, f"pattern {self.pattern.pattern!r} not found", 0.0, self.name)
        if not self.must_match and found:
            return Verdict(False, f"forbidden pattern {self.pattern.pattern!r} found: {found.group(0)[:80]!r}",
                           0.0, self.name)
        return Verdict(True, "pattern check passed", 1.0, self.name)


class ContainsVerifier:
    def __init__(self, *, all_of: list[str] | None = None, any_of: list[str] | None = None,
                 none_of: list[str] | None = None, ignore_case: bool = False, name: str = "contains") -> None:
        self.all_of = list(all_of or [])
        self.any_of = list(any_of or [])
        self.none_of = list(none_of or [])
        self.ignore_case = ignore_case
        self.name = name

    def _norm(self, s: str) -> str:
        return s.casefold() if self.ignore_case else s

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        text = self._norm(resp.text())
        missing = [s for s in self.all_of if self._norm(s) not in text]
        if missing:
            return Verdict(False, f"missing required text: {', '.join(repr(s) for s in missing[:5])}",
                           1 - len(missing) / len(self.all_of), self.name)
        if self.any_of and not any(self._norm(s) in text for s in self.any_of):
            return Verdict(False, f"none of {', '.join(repr(s) for s in self.any_of[:5])} found", 0.0, self.name)
        banned = [s for s in self.none_of if self._norm(s) in text]
        if banned:
            return Verdict(False, f"forbidden text found: {', '.join(repr(s) for s in banned[:5])}", 0.0, self.name)
        return Verdict(True, "required text present", 1.0, self.name)
