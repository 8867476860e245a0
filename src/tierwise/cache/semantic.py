"""The semantic tier: a new question may get the answer cached for an earlier question that
asks the same thing, within exactly the same scope.

Candidates come only from entries whose request agrees with the new one on everything but the
last user question (`keys.context_key`: tenant, route, client format, stream flag, earlier turns,
tools, settings); among them the nearest questions by embedding (cosine) go to the verifier
(verifier.py), and the best one it accepts at the configured false-hit rate is served. The index
is held in this process, bounded by `cache.semantic.max_entries` (oldest first); the answers
themselves live in the cache backend, so with Redis a replica serves a semantic hit only for
questions it indexed itself. Embedding runs on a worker thread: the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from tierwise.cache.settings import SemanticConfig

TOP_K = 4  # nearest questions the verifier looks at


@dataclass(slots=True)
class _Indexed:
    question: str
    vector: np.ndarray
    exact_key: str
    tenant: str
    route: str


class SemanticTier:
    def __init__(self, cfg: SemanticConfig, embedder: Any = None, verifier: Any = None) -> None:
        self.cfg = cfg
        self._embedder = embedder
        self._verifier = verifier
        # context key -> {exact key -> indexed question}; insertion order = age, for the bound
        self.groups: dict[str, OrderedDict[str, _Indexed]] = {}
        self.order: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _models(self) -> tuple[Any, Any]:
        if self._embedder is None:
            from tierwise.routers.features import Embedder

            self._embedder = Embedder(self.cfg.model)
        if self._verifier is None:
            from tierwise.cache.verifier import Verifier

            self._verifier = Verifier.load()
        return self._embedder, self._verifier

    def _eligible(self, question: str) -> bool:
        return 0 < len(question) <= self.cfg.max_question_chars

    async def _embed(self, text: str) -> np.ndarray:
        emb, _ = self._models()
        return (await asyncio.to_thread(emb.encode, [text]))[0]  # type: ignore[no-any-return]

    async def add(self, ctx_key: str, question: str, exact_key: str, tenant: str, route: str) -> None:
        if not self._eligible(question):
            return
        vec = await self._embed(question)
        group = self.groups.setdefault(ctx_key, OrderedDict())
        group[exact_key] = _Indexed(question, vec, exact_key, tenant, route)
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
        vec = await self._embed(question)
        mat = np.stack([it.vector for it in items])
        sims = mat @ vec
        best = np.argsort(-sims)[:TOP_K]
        cands = [items[i] for i in best]
        _, ver = self._models()
        probs = await asyncio.to_thread(
            ver.prob, [c.question for c in cands], [question] * len(cands),
            np.stack([c.vector for c in cands]), np.repeat(vec[None, :], len(cands), axis=0))
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
