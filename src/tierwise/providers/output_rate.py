"""How fast one deployment's model writes: the rate at which a call cut before its usage came is counted to have
written output nobody saw (usage_bounds.unseen_output). 1,000 tokens a second by default, above any hosted frontier
model's speed; a slower model's cut calls were counted up to ten times what they wrote (Claude ~50-100 tokens a
second: a Claude Code user's Esc after 10 s of thinking counted 10,000 tokens where ~1,000 were written).

The rate is the model's `output_tokens_per_second` when its config sets one; else, once `SEEN` of its own completed
calls have written at least `LONG` tokens each, `MARGIN` times the fastest of them (output tokens over the seconds
since the call was sent: a lower bound of its writing speed, as the wait for the first token is in it), never above
the default. A stream's seconds leave out those its relay waited on its reader (review37b: a client reading its
long streams slowly had taught the model its own slow pace, and so under-billed every later cut call of it). Only
long answers count: a short one is mostly the wait for its first token, and a client could bring
the rate down with many of them. The fastest seen is kept, so slow calls never lower it; a model that got faster
(a new host) is counted at most the margin past its old best until it is seen faster.
"""

from __future__ import annotations

from tierwise.providers import sent_clock

UNSEEN_TOKENS_PER_SECOND = 1000.0  # the default: faster than hosted frontier models write
LONG = 256  # output tokens a completed call must have written to say how fast the model writes
SEEN = 5  # such calls before the measured rate is used
MARGIN = 2.0  # the measured rate's headroom (speeds vary with the host's load)


class OutputRate:
    __slots__ = ("configured", "fastest", "seen")

    def __init__(self, configured: float | None = None) -> None:
        self.configured = configured
        self.fastest = 0.0
        self.seen = 0

    def observe(self, output_tokens: int, seconds: float) -> None:
        """A completed call wrote `output_tokens` in `seconds` since it was sent."""
        if output_tokens < LONG or seconds <= 0.0:
            return
        self.seen += 1
        rate = output_tokens / seconds
        if rate > self.fastest:
            self.fastest = rate

    def observe_call(self, output_tokens: int, t0: float, end: float, paused: float, n: int = 1) -> None:
        """A completed call begun at `t0` (sent_clock.start) ended at `end`; `paused`: seconds its relay waited on
        its reader. Its seconds run from when it got a connection (costs10: before, its wait in the provider's pool
        counted, and a tenant keeping the pool busy taught the model a slow rate). `n`: its choices, written side by
        side: each one's share is what the model wrote in those seconds (review38e: the total taught n times the
        model's speed, and other clients' cut calls were counted up to n times what they wrote)."""
        if n > 1:
            output_tokens //= n
        if output_tokens >= LONG:
            self.observe(output_tokens, end - (sent_clock.sent_since(t0) or t0) - paused)

    def per_second(self) -> float:
        """Tokens a second a cut call of this model is counted to have written unseen."""
        if self.configured is not None:
            return self.configured
        if self.seen < SEEN:
            return UNSEEN_TOKENS_PER_SECOND
        return min(UNSEEN_TOKENS_PER_SECOND, MARGIN * self.fastest)
