"""The semantic tier: a new question may get the answer cached for an earlier question that
asks the same thing, within exactly the same scope.

Candidates come only from entries whose request agrees with the new one on everything but the
last user question (`keys.context_key`: tenant, route, client format, stream flag, earlier turns,
tools, settings); among them the nearest questions by embedding (cosine) go to the verifier
(pair_model.py, over the two questions' token vectors), and the best one it accepts at the
configured false-hit rate is served. The index is held in this process, bounded by
`cache.semantic.max_entries` (oldest first; each entry keeps its question's sentence vector and
token vectors, about 15 KB); the answers themselves live in the cache backend, so with Redis a
replica serves a semantic hit only for questions it indexed itself (sharing the index would mean
fetching every candidate's vectors from Redis on each lookup, or a vector index Redis does not
have by default). Embedding and the verifier run on a worker thread: the event loop never waits.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.cache.settings import SemanticConfig

TOP_K = 4  # nearest questions the verifier looks at
RECENT = 256  # questions whose vectors are kept between a miss's lookup and its store (per tenant: below)


@dataclass(slots=True)
class _Indexed:
    question: str
    vector: np.ndarray
    tokens: np.ndarray  # unit token vectors, float16 (the verifier's input)
    exact_key: str
    tenant: str
    route: str


class TokenEmbedder:
    """A question's unit sentence vector and unit token vectors, from one pass of the local model."""

    def __init__(self, model: str) -> None:
        from tierwise.routers.features import Embedder

        self._st = Embedder(model)._load()  # the SentenceTransformer (bundled copy of the default model)

    def encode_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        from tierwise.cache.pair_model import unit_outputs

        return unit_outputs(self._st.encode([text], output_value=None, show_progress_bar=False)[0])


class SemanticTier:
    def __init__(self, cfg: SemanticConfig, embedder: Any = None, verifier: Any = None, base_dir: str = ".") -> None:
        self.cfg = cfg
        self.base_dir = base_dir
        self._embedder = embedder
        self._verifier = verifier
        # context key -> {exact key -> indexed question}; insertion order = age, for the bound
        self.groups: dict[str, OrderedDict[str, _Indexed]] = {}
        self.order: OrderedDict[tuple[str, str], None] = OrderedDict()
        # (tenant, question) -> its vectors. Keyed by tenant: a lookup that found a question's vectors was one
        # embedding faster, so a memo keyed by text alone told any tenant whether another had just asked it.
        self._recent: OrderedDict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def _models(self) -> tuple[Any, Any]:
        if self._embedder is None:
            self._embedder = TokenEmbedder(self.cfg.model)
        if self._verifier is None:
            from tierwise.cache.pair_model import MODEL_FILE, PairModel

            path = MODEL_FILE if self.cfg.verifier_path is None else Path(self.base_dir) / self.cfg.verifier_path
            self._verifier = PairModel.load(path)  # (an absolute verifier_path stays as it is)
        return self._embedder, self._verifier

    def _eligible(self, question: str) -> bool:
        return 0 < len(question) <= self.cfg.max_question_chars

    async def _embed(self, text: str, tenant: str) -> tuple[np.ndarray, np.ndarray]:
        seen = self._recent.get((tenant, text))
        if seen is not None:  # a miss's question, embedded by `find`, comes back to `add` when answered
            return seen
        emb, _ = self._models()
        got: tuple[np.ndarray, np.ndarray] = await asyncio.to_thread(emb.encode_one, text)
        self._recent[(tenant, text)] = got
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return got

    async def add(self, ctx_key: str, question: str, exact_key: str, tenant: str, route: str) -> None:
        if not self._eligible(question):
            return
        vec, toks = await self._embed(question, tenant)
        group = self.groups.setdefault(ctx_key, OrderedDict())
        group[exact_key] = _Indexed(question, vec, toks.astype(np.float16), exact_key, tenant, route)
        self.order[(ctx_key, exact_key)] = None
        self.order.move_to_end((ctx_key, exact_key))
        while len(self.order) > self.cfg.max_entries:
            (ck, ek), _ = self.order.popitem(last=False)
            g = self.groups.get(ck)
            if g is not None:
                g.pop(ek, None)
                if not g:
                    del self.groups[ck]

    async def find(self, ctx_key: str, question: str, tenant: str, route: str) -> str | None:
        """The exact key of a cached entry whose question the verifier accepts, or None."""
        group = self.groups.get(ctx_key)
        if not group or not self._eligible(question):
            return None
        items = [it for it in group.values() if it.tenant == tenant and it.route == route]  # defence in depth
        if not items:
            return None
        vec, toks = await self._embed(question, tenant)
        _, ver = self._models()
        return await asyncio.to_thread(self._verify, items, question, vec, toks, ver)

    def _verify(self, items: list[_Indexed], question: str, vec: np.ndarray, toks: np.ndarray,
                ver: Any) -> str | None:
        sims = np.stack([it.vector for it in items]) @ vec
        best = np.argsort(-sims)[:TOP_K]
        cands = [items[i] for i in best]
        probs = ver.prob([c.question for c in cands], [question] * len(cands), np.stack([c.vector for c in cands]),
                         np.repeat(vec[None, :], len(cands), axis=0), [c.tokens for c in cands], [toks] * len(cands))
        i = int(np.argmax(probs))
        if probs[i] >= ver.threshold(self.cfg.max_false_hit_rate):
            return cands[i].exact_key
        return None

    def forget(self, *, route: str | None = None, tenant: str | None = None) -> None:
        for ck in list(self.groups):
            g = self.groups[ck]
            for ek in [k for k, it in g.items()
                       if (route is None or it.route == route) and (tenant is None or it.tenant == tenant)]:
                del g[ek]
                self.order.pop((ck, ek), None)
            if not g:
                del self.groups[ck]
