"""Self-consistency: sample the same request k more times from the tier under test and pass when
enough samples agree with the answer. Agreement is exact after normalising the text, equal
final numbers (math), or cosine similarity of embeddings above a bar (free text)."""

from __future__ import annotations

import math
import re
import unicodedata

from tierwise.canonical import Request, Response
from tierwise.verifiers.arithmetic import close, final_answer
from tierwise.verifiers.base import Verdict, VerifierError, VerifyContext

_PUNCT_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Case, accents, punctuation and spacing removed: 'Paris.' and ' paris' agree."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _PUNCT_SPACE.sub(" ", text.casefold()).strip()


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class SelfConsistencyVerifier:
    def __init__(self, k: int = 3, threshold: float = 0.6, mode: str = "exact", similarity: float = 0.85,
                 name: str = "self_consistency") -> None:
        if mode not in ("exact", "number", "embedding"):
            raise VerifierError(f"unknown self-consistency mode {mode!r}")
        self.k = k
        self.threshold = threshold
        self.mode = mode
        self.similarity = similarity
        self.name = name

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        if ctx.sample is None:
            raise VerifierError("self_consistency needs a policy that can draw samples (VerifyContext.sample)")
        samples = [s.text() for s in await ctx.sample(self.k)]
        if not samples:
            return Verdict(False, "no samples came back", 0.0, self.name)
        answer = resp.text()
        agree = await self._agreeing(answer, samples, ctx)
        share = agree / len(samples)
        reason = f"{agree} of {len(samples)} samples agree ({self.mode})"
        return Verdict(share >= self.threshold, reason, share, self.name, {"k": len(samples)})

    async def _agreeing(self, answer: str, samples: list[str], ctx: VerifyContext) -> int:
        if self.mode == "number":
            target = final_answer(answer)
            if target is None:
                return 0
            return sum(1 for s in samples if (v := final_answer(s)) is not None and close(target, v, 1e-6))
        if self.mode == "exact":
            target_text = normalise_text(answer)
            return sum(1 for s in samples if normalise_text(s) == target_text)
        if ctx.embed is None:
            raise VerifierError("self_consistency mode 'embedding' needs an embedder (VerifyContext.embed)")
        vectors = await ctx.embed([answer, *samples])
        return sum(1 for v in vectors[1:] if cosine(vectors[0], v) >= self.similarity)
