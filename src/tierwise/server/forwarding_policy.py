"""What a client may make the operator's upstream account do beyond a plain completion.

A same-format upstream gets the client's body with only `model` rewritten, and Anthropic
upstreams get the client's `anthropic-beta` header: without a filter a client could attach MCP
servers, code-execution containers, server tools (web search, web fetch), a paid service tier or
Files API beta flags to the operator's key. `server.forwarding` is the allow-list:

- `anthropic-beta` flags not on `anthropic_betas` are dropped silently: SDKs and Claude Code add
  flags on their own (users cannot unset them), and a flag alone buys nothing without a body
  field or block that uses it, which is filtered below or refused upstream for want of its flag.
- `anthropic-version` that is not a date (`2023-06-01`) is dropped: the upstream gets the
  default; any other text went upstream as written, unscanned.
- Top-level fields tierwise does not model pass only when on `anthropic_fields` /
  `openai_fields`; others are dropped silently (new SDK fields must not break clients), except
  the ones that give the model new reach (`mcp_servers`, `container`, `web_search_options`):
  those are refused with a 400 that names the config key, since dropping them would quietly
  change what the answer is made of. So is `modalities` asking for audio: dropped, it would turn
  an audio answer into a text one without a word (`modalities: ["text"]` alone is dropped). So is a non-empty
  top-level `system` on an OpenAI body (Anthropic's field; OpenAI refuses it): dropped, the instructions were lost.
- An Anthropic message `thread` (server-held conversation state) is refused whatever the allow-list says,
  with Anthropic's own `thread_unsupported_request` code, on which its SDKs resend the full history.
- Anthropic tools with a `type` other than `custom` (server and Anthropic-defined tools) pass
  only when the type matches `server_tools`; otherwise 400, for the same reason. The advisor
  tool is allowed on routes whose policy is `advisor`, which carries it out itself.

Runs once per request on the parsed body, before routing, so the byte pass-through to a
same-format upstream forwards only what passed. Cost: a subset test over the body's top-level
keys (a set difference only when some are unknown), one `dict.get` per tool, and one cached dict
lookup for the beta header.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from tierwise.config import ForwardingPolicy
from tierwise.errors import InvalidRequest, ThreadUnsupported
from tierwise.wire._check import logit_bias
from tierwise.wire.request_parts import wants_audio

# Fields that hand the model capabilities on the operator's account: refused, not dropped.
REACH_FIELDS = {
    "anthropic": frozenset({"mcp_servers", "container"}),
    "openai": frozenset({"web_search_options"}),
    "responses": frozenset(),  # its hosted tools are never forwarded (wire/openai_responses.py)
}
_MISPLACED_SYSTEM = {
    "openai": "system: the Chat Completions API has no top-level `system` (it is Anthropic's Messages API field): "
    'send it as the first message, {"role": "system", "content": ...}, or call /v1/messages',
    "responses": "system: the Responses API has no top-level `system`: send it as `instructions`",
}
_BETA_CACHE_MAX = 256
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")  # an `anthropic-version` is a date
# Server tools a tierwise policy carries out itself (policies/advisor.py), by the route's policy.
EMULATED_TOOLS = {"advisor": ("advisor_",)}


class ForwardingGuard:
    def __init__(self, policy: ForwardingPolicy, known: dict[str, frozenset[str]]) -> None:
        self.betas = list(policy.anthropic_betas)
        self.any_beta = "*" in self.betas
        # Responses bodies are never forwarded as they came: fields the codec does not read are dropped.
        self.fields = {"anthropic": frozenset(policy.anthropic_fields), "openai": frozenset(policy.openai_fields),
                       "responses": frozenset()}
        self.known = known
        self.server_tools = list(policy.server_tools)
        self._beta_cache: dict[str, str] = {}

    def apply(self, body: Any, headers: dict[str, str], fmt: str) -> None:
        """Filter `body` and `headers` in place; raise InvalidRequest for a refused capability."""
        ver = headers.get("anthropic-version")
        if ver is not None and not _VERSION.fullmatch(ver):
            # Anthropic upstreams get it as written: any other text (a value a privacy policy protects,
            # too: headers are not scanned) left unchecked. Dropped, the upstream gets the default.
            del headers["anthropic-version"]
        beta = headers.get("anthropic-beta")
        if beta is not None and not self.any_beta:
            kept = self._filter_betas(beta)
            if kept:
                headers["anthropic-beta"] = kept
            else:
                del headers["anthropic-beta"]
        if not isinstance(body, dict):
            return  # the codec reports what is wrong with it
        known = self.known[fmt]
        if known.issuperset(body):  # the common case, without building a set
            return
        extra = body.keys() - known
        if extra:
            if fmt == "anthropic" and "thread" in extra and body["thread"] is not None:
                # Each turn is routed on its own and the guards read the whole conversation from the request,
                # so the gateway holds no message threads, even for an upstream that would: the SDKs answer
                # this error by sending the full history without `thread`.
                raise ThreadUnsupported(
                    "thread: this gateway keeps no message threads (each turn may go to another model); send the "
                    "whole conversation in `messages` without `thread`")
            allowed = self.fields[fmt]
            if "*" not in allowed:
                for k in extra - allowed:
                    if k in REACH_FIELDS[fmt]:
                        raise InvalidRequest(
                            f"{k}: this gateway does not forward `{k}` (allow it in server.forwarding."
                            f"{fmt}_fields)")
                    if k == "system" and fmt != "anthropic" and body[k]:
                        # Anthropic's field on an OpenAI body (OpenAI refuses it too): dropped, the instructions
                        # were lost without a word. Empty loses nothing and is dropped like any unknown field.
                        raise InvalidRequest(_MISPLACED_SYSTEM[fmt])
                    if k == "modalities" and wants_audio(body[k]):
                        raise InvalidRequest(
                            "modalities: this gateway does not produce audio output (to forward it to an "
                            "OpenAI upstream that speaks audio, allow `modalities` and `audio` in "
                            "server.forwarding.openai_fields)")
                    del body[k]
            if "logit_bias" in body:  # (forwarded: bounded, wire/_check.py)
                logit_bias(body["logit_bias"])

    def check_tools(self, body: Any, fmt: str, policy: str | None) -> None:
        """Refuse Anthropic server tools the config does not allow. Runs after routing: a route
        whose policy emulates a tool (the advisor) takes that tool itself, nothing forwards it."""
        if fmt != "anthropic" or not isinstance(body, dict):
            return
        tools = body.get("tools")
        if isinstance(tools, list):
            for i, t in enumerate(tools):
                tt = t.get("type") if isinstance(t, dict) else None
                if tt is not None and tt != "custom" and not self._server_tool_ok(tt, policy):
                    raise InvalidRequest(
                        f"tools[{i}].type: this gateway does not forward {str(tt)[:80]!r} tools (allow the "
                        "type in server.forwarding.server_tools)")

    def _server_tool_ok(self, t: Any, policy: str | None) -> bool:
        if not isinstance(t, str):
            return False
        if policy is not None and any(t.startswith(p) for p in EMULATED_TOOLS.get(policy, ())):
            return True
        return any(fnmatchcase(t, p) for p in self.server_tools)

    def _filter_betas(self, header: str) -> str:
        kept = self._beta_cache.get(header)
        if kept is None:
            flags = [f.strip() for f in header.split(",")]
            kept = ",".join(f for f in flags if f and any(fnmatchcase(f, p) for p in self.betas))
            if len(self._beta_cache) >= _BETA_CACHE_MAX:  # bounded: a client can send endless variants
                self._beta_cache.clear()
            self._beta_cache[header] = kept
        return kept
