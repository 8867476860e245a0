"""Which of the two APIs an upstream's answer is shaped as: a provider of `kind: openai` pointed at an Anthropic
server (or the reverse) fails every call, and before (session 26's leftovers) said so only as a generic 404 or
"key refused". `doctor` and the first failing request now name the other API and the fix."""

from __future__ import annotations

from typing import Any

NAMES = {"openai": "OpenAI Chat Completions", "anthropic": "Anthropic Messages"}


def other_api(kind: str, body: Any) -> str | None:
    """The other kind (`"anthropic"` / `"openai"`) when `body` (a decoded error body or model list) is shaped as
    that API's, else None."""
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if kind == "openai":
        # Anthropic: {"type": "error", "error": {"type": ..., "message": ...}}; its list: has_more / first_id
        if body.get("type") == "error" and isinstance(err, dict) and "type" in err:
            return "anthropic"
        if "has_more" in body and "first_id" in body:
            return "anthropic"
        return None
    # OpenAI: {"error": {"message": ..., "type": ..., "code": ...}} with no top-level type; its list: object "list"
    if isinstance(err, dict) and "type" not in body and "message" in err:
        return "openai"
    if body.get("object") == "list" and isinstance(body.get("data"), list):
        return "openai"
    return None


def hint(kind: str, other: str) -> str:
    """What to say: the shape seen, the kind configured and the fix."""
    base = "with its /v1" if other == "openai" else "without /v1, which the gateway adds"
    return (f"the upstream answers in the {NAMES[other]} API's shape but the provider has kind: {kind}: set "
            f"kind: {other}, and base_url {base}")
