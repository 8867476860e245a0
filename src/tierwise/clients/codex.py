"""What the OpenAI Codex CLI sends that routing can use: the header that marks a subagent's turns.

Codex (checked with 0.171.0) runs delegated work — a thread started by its `multi_agent_v1.spawn_agent` tool, memory
consolidation — as subagents, and each of their requests carries `x-openai-subagent` with the kind (`collab_spawn`,
`memory_consolidation`, …) next to `x-codex-parent-thread-id`. Its main-agent turns and its compaction turns carry
neither. Two kinds are not counted as delegated work: `compact` (a compaction run as a subagent summarises the main
conversation: as with Claude Code, compaction stays where the main agent is) and `review` (`codex review` and `/review`
send the review the user asked for with it: the session's own task, not background work; measured in session 35, the
config `tierwise init` writes sent `codex review` to the local model). Nor is `guardian`: with `approvals_reviewer =
"auto_review"` Codex asks a guardian subagent whether an action that needs approval (a command outside the sandbox) may
run, and its verdict stands in for the user's; a security decision stays on the model the user chose for the session
(review35e: under the `tierwise init` rules the local model approved a write outside the workspace).
"""

from __future__ import annotations

from tierwise.canonical import Request

SUBAGENT_HEADER = "x-openai-subagent"
NOT_DELEGATED = frozenset({"compact", "review", "guardian"})
# A Codex request carries its whole instructions and tool list: 39,208 characters in session 35 (newuser35, `codex
# exec`), ~10,000 tokens at four characters a token; a spawned subagent starts from the same instructions and tools.
# Like Claude Code's (clients.claude_code.TOKENS), such a turn does not fit a local model under MIN_WINDOW.
SUBAGENT_TOKENS = 10_000


def subagent_kind(req: Request) -> str | None:
    """The subagent kind of a Codex subagent's request (e.g. `collab_spawn`), else None."""
    v = req.headers.get(SUBAGENT_HEADER)
    if v is None or v.strip().lower() in NOT_DELEGATED:
        return None
    return v
