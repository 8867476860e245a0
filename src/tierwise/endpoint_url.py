"""Endpoint URLs under a provider's base_url: the path goes before the base URL's query string.

A base_url may carry a query (`?key=…` for a key passed that way, Azure's `?api-version=…`): appending
`/chat/completions` to the whole string put the path inside the last query value (`key=K/chat/completions`),
so the upstream got the base path without its endpoint and a key it could not match.
"""

from __future__ import annotations


def endpoint(base_url: str, path: str) -> str:
    """`base_url` with `path` (starting with `/`, and perhaps its own `?query`) added to its path, its query kept."""
    base, hash_, fragment = base_url.partition("#")
    base, q, query = base.partition("?")
    path, pq, path_query = path.partition("?")
    queries = "&".join(part for part in (query, path_query) if part)
    return base.rstrip("/") + path + ("?" + queries if q or pq else "") + (hash_ + fragment if hash_ else "")
