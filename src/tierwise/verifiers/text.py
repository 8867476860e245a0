"""Pulling the checkable part out of a model's prose: fenced blocks, JSON, code."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*+)[^\n]*+\n(.*?)(?:```|\Z)", re.DOTALL)  # possessive: linear


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` fenced block, in order; an unclosed last fence runs to the end."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


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
