"""A tool call's streamed arguments, checked piece by piece: is the text so far the beginning of one JSON
object, and, when it stops being one (or ends unfinished), what closes what was already sent into an object.

Anthropic's `input_json_delta` pieces must add up to a JSON object: its SDKs parse the pieces received so
far after every delta and raise in the caller's code on text that cannot begin one. A model behind an
OpenAI-format server (a local one without a grammar, above all) may write arguments that are not JSON, or
JSON that is not an object. The Anthropic stream encoder passes each piece on while this says the text is
still a valid beginning, holds the rest, and ends the block with `completion()`: the object the sent pieces
opened, closed, with the whole text under `_raw_arguments` (`tool_input`'s key for arguments that are not
JSON). One pass over each piece; string contents are skipped by a regular expression.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')  # characters inside a string that need no attention
_TOKEN = re.compile(r"[0-9A-Za-z.+\-]*")  # what a number or a literal (true/false/null) is made of
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_START = re.compile(r"-?(?:0|[1-9][0-9]*)?(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")
_LITERALS = ("true", "false", "null")
_HEX = frozenset("0123456789abcdefABCDEF")
_WS = frozenset(" \t\r\n")
RAW_KEY = "_raw_arguments"
# A hostile or broken upstream streams arguments in pieces it chooses: a number of 800 KB in 10-character pieces
# was re-matched whole after every piece and `[` × 80,000 copied the open containers at every piece (95 s and
# 4.7 s of the event loop: wire4). No model writes such values; past these the text is "not an object" (the
# encoder then closes what was sent and keeps the whole text under RAW_KEY). 128 levels also stay below the
# 254 that orjson can encode again.
MAX_DEPTH = 128
MAX_TOKEN = 1000
# Characters one stream may have checked, shared by the prefixes its owner makes (`budget`): past it the text
# is "not an object". The state machine takes a Python step per character outside strings (~0.5 µs for `"k":1,`
# repeated, or `[],`): a 64 MiB stream of those held the event loop ~27 s, the bounds above notwithstanding
# (review27b); now ~1 s at most. A model's answer (≤ ~128k tokens, well under 1 MB) stays far below.
MAX_CHECKED = 2 << 20


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments (an OpenAI-format JSON string) as the object Anthropic's `tool_use.input` must
    be: a model may write text that is not JSON, or JSON that is not an object."""
    try:
        args = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {RAW_KEY: arguments}
    return args if isinstance(args, dict) else {"value": args}


class ObjectPrefix:
    """Fed a text piece by piece; `ok` while the text so far can begin a JSON object (with `any_value`: any one
    JSON value, for a structured answer whose schema's root is not an object: wire/strict_output.py)."""

    def __init__(self, any_value: bool = False, budget: list[int] | None = None) -> None:
        self.budget = budget if budget is not None else [MAX_CHECKED]  # characters left: a stream's prefixes share it
        self.stack: list[str] = []  # open containers, "{" or "["
        # start | key | key_or_end | colon | value | value_or_end | comma_or_end | done
        self.expect = "value" if any_value else "start"
        self.string: str | None = None  # inside a string: "key" or "value"
        self.escape = 0  # inside a string: -1 after a backslash, n > 0 hex digits of a \u still to come
        self.token = ""  # a number or literal being read
        self.ok = True

    def feed(self, text: str) -> bool:
        """Take the next piece; whether the text so far still begins a JSON object (once False, always, and
        the state stays that of the pieces before the one that failed)."""
        if not self.ok:
            return False
        left = self.budget[0] - len(text)
        if left < 0:
            self.ok = False
            return False
        self.budget[0] = left
        saved = (self.stack[:], self.expect, self.string, self.escape, self.token)
        if not self._feed(text):
            self.ok = False
            self.stack, self.expect, self.string, self.escape, self.token = saved
        return self.ok

    def _feed(self, text: str) -> bool:  # noqa: C901 - one state machine, kept in one place
        i, n = 0, len(text)
        while i < n:
            if self.string is not None:
                if self.escape == -1:
                    c = text[i]
                    if c == "u":
                        self.escape = 4
                    elif c in '"\\/bfnrt':
                        self.escape = 0
                    else:
                        return False
                    i += 1
                elif self.escape:
                    if text[i] not in _HEX:
                        return False
                    self.escape -= 1
                    i += 1
                else:
                    i = _PLAIN.match(text, i).end()  # type: ignore[union-attr]
                    if i == n:
                        break
                    c = text[i]
                    i += 1
                    if c == '"':
                        self.expect = "colon" if self.string == "key" else "comma_or_end" if self.stack else "done"
                        self.string = None
                    elif c == "\\":
                        self.escape = -1
                    else:
                        return False  # a control character inside a string
                continue
            if self.token:
                end = _TOKEN.match(text, i).end()  # type: ignore[union-attr]
                if len(self.token) + end - i > MAX_TOKEN:
                    return False
                self.token += text[i:end]
                i = end
                if i == n:
                    break
                if not (self.token in _LITERALS or _NUMBER.fullmatch(self.token)):
                    return False
                self.token = ""
                self.expect = "comma_or_end" if self.stack else "done"
                continue
            c = text[i]
            i += 1
            if c in _WS:
                continue
            e = self.expect
            if e == "start":
                if c != "{":
                    return False
                self._open("{")
            elif e in ("key", "key_or_end"):
                if c == '"':
                    self.string = "key"
                elif c == "}" and e == "key_or_end":
                    self._close()
                else:
                    return False
            elif e == "colon":
                if c != ":":
                    return False
                self.expect = "value"
            elif e in ("value", "value_or_end"):
                if c == "]" and e == "value_or_end":
                    self._close()
                elif c in "{[":
                    if len(self.stack) >= MAX_DEPTH:
                        return False
                    self._open(c)
                elif c == '"':
                    self.string = "value"
                elif c in "-0123456789tfn":
                    self.token = c
                else:
                    return False
            elif e == "comma_or_end":
                top = self.stack[-1]
                if c == ",":
                    self.expect = "key" if top == "{" else "value"
                elif c == ("}" if top == "{" else "]"):
                    self._close()
                else:
                    return False
            else:  # done: nothing may follow the object
                return False
        t = self.token
        return not t or any(lit.startswith(t) for lit in _LITERALS) or _NUMBER_START.fullmatch(t) is not None

    def _open(self, c: str) -> None:
        self.stack.append(c)
        self.expect = "key_or_end" if c == "{" else "value_or_end"

    def _close(self) -> None:
        self.stack.pop()
        self.expect = "comma_or_end" if self.stack else "done"

    def completion(self, whole: str) -> str:
        """What to send after the pieces that were valid so the sent text is one JSON object: "" when it is one
        already; else the open string, value and containers closed, with `whole` (every piece, sent or not)
        under RAW_KEY in the outermost object. With nothing sent but white space, the object `tool_input`
        makes of `whole`."""
        if self.expect == "done" and not self.token:
            return ""
        if self.expect == "start":
            return orjson.dumps(tool_input(whole)).decode() if whole.strip() else ""
        out = []
        if self.string is not None:
            out.append("\\" if self.escape == -1 else "0" * max(self.escape, 0))
            out.append('"')
            self.expect = "colon" if self.string == "key" else "comma_or_end"
        elif self.token:
            lit = next((v for v in _LITERALS if v.startswith(self.token)), None)
            out.append(lit[len(self.token):] if lit is not None else "0" if self.token[-1] in "-.eE+" else "")
            self.expect = "comma_or_end"
        if self.expect == "colon":
            out.append(": null")
        elif self.expect == "value":
            out.append("null")
        elif self.expect == "key":
            out.append(f'"{RAW_KEY}_"' + ": null")
        raw = f"{orjson.dumps(RAW_KEY).decode()}: {orjson.dumps(whole).decode()}"
        for depth in range(len(self.stack) - 1, -1, -1):
            c = self.stack[depth]
            if depth == 0:
                out.append(raw if self.expect == "key_or_end" else ", " + raw)
            out.append("}" if c == "{" else "]")
            self.expect = "comma_or_end"
        return "".join(out)
