"""Context compression: long context (tool results, documents, old turns) cut down to a target size
before a route calls its model, by extractive selection of the passages most relevant to the last
user turn (BM25, optionally mixed with local embeddings) or by a summary from a local model
(docs/compression.md). Modules: settings (the `compression:` section), passages (splitting and
scoring), compressor (the request rewrite and the route wrapper)."""
