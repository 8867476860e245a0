"""Claude Code's traffic classes, recognised from the request itself.

Claude Code (checked against 2.1.197) sends every kind of request with the *main* model id unless
the user set ANTHROPIC_DEFAULT_HAIKU_MODEL, so the requested model name cannot tell a title from a
main turn. This module owns the classification from what the request carries; the evidence is in
docs/claude-code-traffic.md and the captured sessions in tests/clients/transcripts/.

Classes (first that applies wins):
  compact    the conversation-summary request (/compact or auto-compact): the last user turn asks
             for "a detailed summary of the conversation"; it keeps the main tools and system prompt
  subagent   a Task/Agent subagent: the `X-Claude-Code-Agent-Id` header, or `cc_is_subagent=true`
             in the billing line Claude Code puts in the first system block
  title      session title: structured output (`output_config.format`) whose schema has `title`
  web_fetch  WebFetch's page summary: no tools, the user turn starts with "Web page content:"
  main       the main agent loop: it offers tools or carries the interactive-agent system prompt
  side       any other tool-less side call Claude Code makes
`background` in a rule means title, web_fetch or side; `any` means any Claude Code request.

A request is Claude Code's when its user agent starts `claude-cli/`, its `x-app` is `cli`, it has
an `x-claude-code-session-id` header, or its first system block is Claude Code's billing line.
Cost: a few dict look-ups and substring searches over the system prompt and the last user turn.
"""

from __future__ import annotations

from tierwise.canonical import Request, TextBlock

CLASSES = ("main", "subagent", "compact", "title", "web_fetch", "side")
GROUPS: dict[str, frozenset[str]] = {
    "background": frozenset({"title", "web_fetch", "side"}),
    "any": frozenset(CLASSES),
}
NAMES = frozenset(CLASSES) | frozenset(GROUPS)

# Measured on Claude Code 2.1.197's requests (tierwise.tokens estimates; docs/claude-code-traffic.md): a subagent
# turn starts at ~11,000 tokens (system prompt and 21 tools), a main-agent turn at ~19,000, compaction above that;
# titles and page summaries at ~400. A local model that holds less than MIN_WINDOW per request answers none of
# the subagent turns a config sends it: each goes to the route's next (frontier) target.
TOKENS = {"subagent": 11_000, "main": 19_000, "compact": 19_000, "title": 400, "web_fetch": 400, "side": 400}
MIN_WINDOW = 16_384

AGENT_ID_HEADER = "x-claude-code-agent-id"
SESSION_HEADER = "x-claude-code-session-id"
BILLING_PREFIX = "x-anthropic-billing-header:"
SUBAGENT_BILLING_MARK = "cc_is_subagent=true"
COMPACT_MARK = "summary of the conversation"
WEB_FETCH_MARK = "Web page content:"
MAIN_SYSTEM_MARK = "You are an interactive agent"
TITLE_SYSTEM_MARK = "title"
# Only the head of long texts is searched: the markers sit at the start of the blocks they mark.
_HEAD = 4096


def expand(names: list[str]) -> frozenset[str]:
    """Class names a rule's `claude_code:` value stands for."""
    out: set[str] = set()
    for n in names:
        out |= GROUPS.get(n, {n})
    return frozenset(out)


def is_claude_code(req: Request) -> bool:
    h = req.headers
    if h.get("user-agent", "").startswith("claude-cli/") or h.get("x-app") == "cli" or SESSION_HEADER in h:
        return True
    return bool(req.system) and req.system[0].text.startswith(BILLING_PREFIX)


def _last_user_text(req: Request) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            # the compaction instruction is the turn's last text block (after any tool results);
            # its marker sits in the first few hundred characters of a ~9,000-character prompt
            texts = [b.text for b in m.content if isinstance(b, TextBlock)]
            return texts[-1][:_HEAD] if texts else ""
    return ""


def _first_user_text(req: Request) -> str:
    for m in req.messages:
        if m.role == "user":
            for b in m.content:
                if isinstance(b, TextBlock):
                    return b.text[:_HEAD]
            return ""
    return ""


def _title_schema(req: Request) -> bool:
    oc = req.extra.get("output_config")
    fmt = oc.get("format") if isinstance(oc, dict) else None
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and TITLE_SYSTEM_MARK in props


def classify(req: Request) -> tuple[str, str] | None:
    """(class, the evidence) for a Claude Code request; None when the request is not Claude Code's."""
    if not is_claude_code(req):
        return None
    billing = req.system[0].text if req.system and req.system[0].text.startswith(BILLING_PREFIX) else ""
    if COMPACT_MARK in _last_user_text(req):
        return "compact", f"last user turn asks for a {COMPACT_MARK!r}"
    if AGENT_ID_HEADER in req.headers:
        return "subagent", f"{AGENT_ID_HEADER} header"
    if SUBAGENT_BILLING_MARK in billing:
        return "subagent", f"{SUBAGENT_BILLING_MARK} in the system billing line"
    if _title_schema(req):
        return "title", "structured output with a 'title' property"
    if not req.tools and _first_user_text(req).lstrip().startswith(WEB_FETCH_MARK):
        return "web_fetch", f"no tools, user turn starts {WEB_FETCH_MARK!r}"
    if req.tools:
        return "main", f"{len(req.tools)} tools offered"
    if any(MAIN_SYSTEM_MARK in b.text[:_HEAD] for b in req.system):
        return "main", "the interactive-agent system prompt"
    return "side", "a tool-less side call"
