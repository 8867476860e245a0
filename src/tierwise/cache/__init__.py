"""Answer cache: an exact tier keyed on everything that can change an answer, and a semantic tier
for routes that allow it; in-process, SQLite or Redis storage (docs/cache.md).

Modules: settings (the `cache:` config section), keys (exact and semantic-scope keys), entry
(stored bytes), backends (memory, sqlite, redis), answer_cache (the request-path wrapper),
semantic (embedding index and the pair verifier).
"""
