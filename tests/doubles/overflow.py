"""Upstreams with a context window: each refuses an over-long request with its server's own error.

`ContextLimit(window, server)` is a script item (use it as a double's `default`, or queue it):
a request whose size is over `window` tokens gets the overflow error that server really sends;
any other request gets `then`. Sizes use the doubles' estimate (about 4 bytes of JSON per token).

The bodies follow what each server sends (checked against their sources and reports):
- llama.cpp `llama-server`: HTTP 400, type `exceed_context_size_error`, with `n_prompt_tokens` and
  `n_ctx` beside the message "request (N tokens) exceeds the available context size (M tokens), ...";
- vLLM: HTTP 400, type `BadRequestError`, "This model's maximum context length is M tokens. However,
  your request has N input tokens. ...", `code` 400;
- OpenAI: HTTP 400, type `invalid_request_error`, param `messages`, code `context_length_exceeded`;
- Ollama (its /v1 API): HTTP 400, "the input length exceeds the context length";
- Anthropic: HTTP 400 `invalid_request_error`, "prompt is too long: N tokens > M maximum".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tests.doubles.base import estimate_tokens
from tests.doubles.script import Raw, Reply

SERVERS = ("llamacpp", "vllm", "openai", "ollama", "anthropic")


def overflow_body(server: str, tokens: int, window: int) -> dict[str, Any]:
    """The error body `server` answers an over-long prompt with (HTTP 400 for all of them)."""
    if server == "llamacpp":
        return {"error": {"code": 400, "message": f"request ({tokens} tokens) exceeds the available context size "
                                                  f"({window} tokens), try increasing it",
                          "type": "exceed_context_size_error", "n_prompt_tokens": tokens, "n_ctx": window}}
    if server == "vllm":
        return {"error": {"message": f"This model's maximum context length is {window} tokens. However, your "
                                     f"request has {tokens} input tokens. Please reduce the length of the input "
                                     "messages.", "type": "BadRequestError", "param": None, "code": 400}}
    if server == "openai":
        return {"error": {"message": f"This model's maximum context length is {window} tokens. However, your "
                                     f"messages resulted in {tokens} tokens. Please reduce the length of the "
                                     "messages.", "type": "invalid_request_error", "param": "messages",
                          "code": "context_length_exceeded"}}
    if server == "ollama":
        return {"error": {"message": "the input length exceeds the context length", "type": "invalid_request_error",
                          "param": None, "code": None}}
    if server == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error",
                                           "message": f"prompt is too long: {tokens} tokens > {window} maximum"},
                "request_id": "req_double_overflow"}
    raise ValueError(f"unknown server {server!r}; one of {SERVERS}")


def request_tokens(body: Any) -> int:
    """The size of a chat request as a server with a tokenizer would count it (roughly)."""
    if not isinstance(body, dict):
        return 0
    return estimate_tokens({k: body.get(k) for k in ("system", "messages", "tools")})


@dataclass
class ContextLimit:
    """Refuse requests over `window` tokens the way `server` does; answer the rest with `then`."""

    window: int
    server: str = "llamacpp"
    then: Any = None
    refused: int = 0  # requests refused for their size

    def __call__(self, rec: Any) -> Any:
        n = request_tokens(rec.body)
        if n > self.window:
            self.refused += 1
            return Raw(400, orjson.dumps(overflow_body(self.server, n, self.window)))
        return self.then if self.then is not None else Reply(text="ok")
