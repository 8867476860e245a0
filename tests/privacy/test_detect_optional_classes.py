"""URL, DATE_TIME, NRP and DRIVER_LICENSE detectors; which of them a default config runs; and
the shared prescan's edge cases (windows around digit clusters, text beyond Latin-1)."""

from __future__ import annotations

import pytest

from tests.privacy.support import found
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DEFAULT_CLASSES, PRESETS, DetectionConfig

POSITIVE = [
    # URLs: any scheme, `www.`, trailing sentence punctuation left out, brackets kept when balanced
    ("see https://intranet.example.org/hr/reviews?id=42.", "URL", "https://intranet.example.org/hr/reviews?id=42"),
    ("Website: http://www.ScrapbookInsider.com.pt/", "URL", "http://www.ScrapbookInsider.com.pt/"),
    ("(docs at www.beispiel.de/handbuch)", "URL", "www.beispiel.de/handbuch"),
    ("ftp://files.example.net/a.tar.gz, then", "URL", "ftp://files.example.net/a.tar.gz"),
    ("read https://en.wikipedia.org/wiki/Mercury_(planet) now", "URL",
     "https://en.wikipedia.org/wiki/Mercury_(planet)"),
    # dates and times, several shapes and languages
    ("When: 2000-04-16 11:34:35 Where: home", "DATE_TIME", "2000-04-16 11:34:35"),
    ("It's like that since 12/1/1981", "DATE_TIME", "12/1/1981"),
    ("Termin am 12.03.2024 um 14:30", "DATE_TIME", "12.03.2024"),
    ("Termin am 12.03.2024 um 14:30", "DATE_TIME", "14:30"),
    ("flew to Leppen on Tuesday morning", "DATE_TIME", "Tuesday"),
    ("rendez-vous lundi prochain", "DATE_TIME", "lundi"),
    ("the deadline is March 12, 2025", "DATE_TIME", "March 12, 2025"),
    ("le 1er mai 2024", "DATE_TIME", "1er mai 2024"),
    ("The orchestra was founded in 1977. Since then", "DATE_TIME", "1977"),
    ("music of the 1990s", "DATE_TIME", "1990s"),
    ("meet at 5 pm sharp", "DATE_TIME", "5 pm"),
    # nationality, religious, political groups (word list; NER adds spaCy's NORP when installed)
    ("There's this nice new Croatian place downtown", "NRP", "Croatian"),
    ("I am cambodian but I live in Belgium", "NRP", "cambodian"),
    ("We are proud Ecuadorians", "NRP", "Ecuadorians"),
    ("he is a practising Muslim", "NRP", "Muslim"),
    ("she votes Republican", "NRP", "Republican"),
    # driving licence numbers after a cue, several countries
    ("my driver's license number is 2270-66-1551", "DRIVER_LICENSE", "2270-66-1551"),
    ("My driver's license number is F162823540116.", "DRIVER_LICENSE", "F162823540116"),
    ("Führerschein Nr. B072RRE2I55", "DRIVER_LICENSE", "B072RRE2I55"),
    ("körkortsnummer 123 456 78", "DRIVER_LICENSE", "123 456 78"),
    ("DL: D1234567", "DRIVER_LICENSE", "D1234567"),
]


@pytest.mark.parametrize("text, entity, value", POSITIVE, ids=[f"{e}:{v[:24]}" for _, e, v in POSITIVE])
def test_finds(det, text, entity, value):
    assert (entity, value) in found(det, text)


NEGATIVE = [
    ("import os.path and run setup.py", "URL"),  # bare names are not URLs
    ("the www is big", "URL"),
    ("you may 2x the dose", "DATE_TIME"),
    ("I have 1500 apples", "DATE_TIME"),  # a number, no year cue
    ("version 1.2.3 and 3.11", "DATE_TIME"),
    ("polish the table", "NRP"),  # everyday lower-case word
    ("license plate ABC123", "DRIVER_LICENSE"),  # no licence-number cue
    ("driver license: none yet", "DRIVER_LICENSE"),
]


@pytest.mark.parametrize("text, entity", NEGATIVE, ids=[f"{e}:{t[:24]}" for t, e in NEGATIVE])
def test_does_not_find(det, text, entity):
    assert [v for e, v in found(det, text) if e == entity] == []


def test_url_with_credentials_keeps_the_credentials_finding(det):
    text = "clone https://bob:hunter2hunter@git.example.com/repo.git"
    assert ("URL_CREDENTIALS", "bob:hunter2hunter") in found(det, text)


def test_date_of_birth_wins_over_date_time(det):
    assert found(det, "She was born on 2/8/1935.") == [("DATE_OF_BIRTH", "2/8/1935")]


def test_frequent_classes_are_off_by_default_and_licences_on():
    d = Detector(DetectionConfig(ner={"enabled": False}))
    assert set(d.class_entities) == set(DEFAULT_CLASSES)
    text = "On Tuesday the Croatian team posted https://example.org/x; my driver's license is D1234567"
    assert found(d, text) == [("DRIVER_LICENSE", "D1234567")]
    on = Detector(DetectionConfig.model_validate({
        "classes": {"urls": {}, "dates": {}, "affiliations": {}}, "ner": {"enabled": False}}))
    assert {e for e, _ in found(on, text)} == {"URL", "DATE_TIME", "NRP"}
    assert {name: PRESETS[name] for name in ("urls", "dates", "affiliations")} == {
        "urls": ["URL"], "dates": ["DATE_TIME"], "affiliations": ["NRP"]}


# ---------------------------------------------------------------- the shared prescan's edges

def test_identifiers_beside_text_beyond_latin1(det):
    # curly quotes, an em dash, Greek and an emoji around the values: the Latin-1 runs and the
    # digit-cluster windows must still see them at their own offsets
    text = "“Κάρτα” — 4111 1111 1111 1111 ✓ iban: “GB82WEST12345698765432” 🙂 codice RSSMRA85T10A562S."
    got = found(det, text)
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in got
    assert ("IBAN_CODE", "GB82WEST12345698765432") in got
    assert ("IT_FISCAL_CODE", "RSSMRA85T10A562S") in got


def test_identifiers_far_apart_in_long_numeric_text(det):
    filler = " ".join(f"{i} apples cost {i * 3} dollars." for i in range(400))
    text = f"{filler} SSN 536-22-1234 {filler} ring me on +44 20 7946 0958 today. {filler} token xK9fL2mQ8vR4tZ7wB1nC5hJ3"
    got = found(det, text)
    assert ("US_SSN", "536-22-1234") in got
    assert ("PHONE_NUMBER", "+44 20 7946 0958") in got
    assert ("SECRET", "xK9fL2mQ8vR4tZ7wB1nC5hJ3") in got


def test_email_with_a_long_local_part_and_spaces_around_the_at(det):
    local = "a" * 60 + ".b"
    assert ("EMAIL_ADDRESS", f"{local}@mail.example.com") in found(det, f"write {local}@mail.example.com now")
    assert ("EMAIL_ADDRESS", "jane @ example.com") in found(det, "mail: jane @ example.com")


def test_street_prefix_words_beyond_latin1(det):
    # a Greek street word: not in the Latin-1 word mask, found by the second automaton
    assert ("STREET_ADDRESS", "οδός Ερμού 12") in found(det, "μένω στην οδός Ερμού 12")


def test_a_demonym_in_a_place_name_is_not_a_group(det):
    text = "She moved from the Czech Republic to the Solomon Islands; her Czech friends stayed."
    groups = [(f.start, f.end) for f in det.scan(text) if f.entity == "NRP"]
    second = text.rindex("Czech")
    assert groups == [(second, second + len("Czech"))]
