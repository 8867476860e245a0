"""Pulling the checkable part out of a model's prose: fenced blocks, JSON, code."""

from __future__ import annotations

import re

_LANG = re.compile(r"[ \t]*+([\w+#.-]*+)")
FENCE = "```"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` fenced block, in order; an unclosed last fence runs to the end.

    A fence is ``` and the rest of its line (a language name first); the body runs to the next
    ```. One forward scan with `str.find`, so each character is looked at a bounded number of
    times whatever the text (a regex over 100 kB of backticks took seconds).
    """
    out: list[tuple[str, str]] = []
    pos = text.find(FENCE)
    while pos >= 0:
        nl = text.find("\n", pos + 3)
        if nl < 0:  # no line after this fence, so none after any later one either
            break
        lang = _LANG.match(text, pos + 3, nl)
        end = text.find(FENCE, nl + 1)
        out.append((lang.group(1).lower() if lang else "", text[nl + 1 : end if end >= 0 else len(text)]))
        if end < 0:
            break
        pos = text.find(FENCE, end + 3)
    return out


def json_candidate(text: str) -> str:
    """The text most likely meant as JSON: a ```json block, else any fenced block, else the text."""
    blocks = fenced_blocks(text)
    for lang, body in blocks:
        if lang in ("json", "jsonc", "json5"):
            return body.strip()
    if blocks and not text.strip().startswith(("{", "[")):
        return blocks[0][1].strip()
    return text.strip()


def python_code(text: str) -> str | None:
    """Python in the answer: all ```python blocks joined, else unlabelled blocks, else the whole
    text when there are no fences (a bare-code answer). None when there is nothing to check."""
    blocks = fenced_blocks(text)
    py = [body for lang, body in blocks if lang in ("python", "py", "python3")]
    if not py:
        py = [body for lang, body in blocks if lang == ""]
    if py:
        return "\n\n".join(b.rstrip() for b in py) + "\n"
    if blocks:
        return None
    return text if text.strip() else None
