"""Confidence thresholds from the answer's token logprobs: mean logprob, mean entropy of the
top-k distribution, and the single least likely token. Only upstreams that return logprobs
(OpenAI-compatible servers, llama.cpp, vLLM) can be checked; `on_missing` decides the rest."""

from __future__ import annotations

import math

from tierwise.canonical import Request, Response, TokenLogprob
from tierwise.verifiers.base import Verdict, VerifyContext


def token_entropy(tok: TokenLogprob) -> float:
    """Entropy (nats) of the top-k alternatives, renormalised; 0 when only the chosen token is known."""
    options = tok.top or [(tok.token, tok.logprob)]
    probs = [math.exp(lp) for _, lp in options]
    total = sum(probs)
    if total <= 0:
        return 0.0
    return -sum((p / total) * math.log(p / total) for p in probs if p > 0)


class LogprobsVerifier:
    def __init__(self, min_mean_logprob: float | None = None, max_mean_entropy: float | None = None,
                 min_token_logprob: float | None = None, on_missing: str = "fail", name: str = "logprobs") -> None:
        self.min_mean_logprob = min_mean_logprob
        self.max_mean_entropy = max_mean_entropy
        self.min_token_logprob = min_token_logprob
        self.on_missing = on_missing
        self.name = name

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        toks = resp.logprobs or []
        if not toks:
            return Verdict(self.on_missing == "pass", "upstream returned no logprobs", None, self.name)
        mean_lp = sum(t.logprob for t in toks) / len(toks)
        mean_h = sum(token_entropy(t) for t in toks) / len(toks)
        worst = min(toks, key=lambda t: t.logprob)
        detail = {"mean_logprob": round(mean_lp, 4), "mean_entropy": round(mean_h, 4), "tokens": len(toks)}
        score = math.exp(mean_lp)  # geometric-mean token probability
        if self.min_mean_logprob is not None and mean_lp < self.min_mean_logprob:
            return Verdict(False, f"mean logprob {mean_lp:.3f} < {self.min_mean_logprob}", score, self.name, detail)
        if self.max_mean_entropy is not None and mean_h > self.max_mean_entropy:
            return Verdict(False, f"mean entropy {mean_h:.3f} > {self.max_mean_entropy}", score, self.name, detail)
        if self.min_token_logprob is not None and worst.logprob < self.min_token_logprob:
            return Verdict(False, f"token {worst.token!r} has logprob {worst.logprob:.3f} < {self.min_token_logprob}",
                           score, self.name, detail)
        return Verdict(True, f"confident (mean logprob {mean_lp:.3f})", score, self.name, detail)
