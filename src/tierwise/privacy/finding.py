"""`Finding`: one sensitive value a detector found in a text (entity type, character span, score).

Entity names follow Presidio's (CREDIT_CARD, IBAN_CODE, US_SSN, EMAIL_ADDRESS, PHONE_NUMBER,
IP_ADDRESS, PERSON, ORGANIZATION, LOCATION, ...) plus tierwise's own (UK_NINO,
SE_PERSONNUMMER, DE_TAX_ID, URL_CREDENTIALS, SECRET, DATE_OF_BIRTH, STREET_ADDRESS, ...) and
the names users give their dictionaries and patterns. Spans index the ORIGINAL text (the
detector normalises Unicode internally and maps spans back).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float
    detector: str

    def __repr__(self) -> str:  # never show values; a Finding holds none, but keep logs terse
        return f"Finding({self.entity}, {self.start}:{self.end}, {self.score:.2f}, {self.detector})"
