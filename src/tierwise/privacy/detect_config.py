"""The `privacy` config section's detection part: data classes, NER, the user's own words and patterns.

```yaml
privacy:
  classes:                 # data class -> the detectors (entity names) that make it up
    pii: {}                # a preset name with no `detectors` takes the preset's list
    secrets: {}
    customer:
      detectors: [CUSTOMER_ID, EMAIL_ADDRESS, PERSON]
  phone_regions: [US, GB, SE, DE, FR]
  ner: {enabled: auto}
  user:
    patterns: {CUSTOMER_ID: ['CUST-\\d{6}']}
    dictionaries: {PROJECT: [Bluebird, Nightjar]}
```

Every detector name must be a built-in entity or one the user defines under `user`; a class
that is not a preset must list its detectors. Errors name the field. Without `classes:` a config
gets `DEFAULT_CLASSES` (pii, phi, secrets, customer); the presets `urls`, `dates` and
`affiliations` exist but run only when a config names them (their values are in most ordinary
requests; see docs/privacy.md).
"""

from __future__ import annotations

from typing import Literal

import phonenumbers
import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Built-in entity names, grouped by the recognizer family that emits them.
CHECKSUM_ENTITIES = (
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "UK_NINO",
    "SE_PERSONNUMMER",
    "DE_TAX_ID",
    "FR_INSEE",
    "NL_BSN",
    "ES_DNI",
    "IT_FISCAL_CODE",
)
CONTACT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "URL_CREDENTIALS", "URL")
SECRET_ENTITIES = ("SECRET",)
CONTEXT_ENTITIES = ("DATE_OF_BIRTH", "STREET_ADDRESS", "DRIVER_LICENSE", "DATE_TIME")
# NRP (nationality, religious or political group): a word list, plus spaCy's NORP when NER runs.
NER_ENTITIES = ("PERSON", "ORGANIZATION", "LOCATION", "NRP")
# Read from a file's metadata, not from text: the position an image's EXIF/XMP GPS fields give (privacy/media_text.py)
MEDIA_ENTITIES = ("GPS_POSITION",)
BUILTIN_ENTITIES = (CHECKSUM_ENTITIES + CONTACT_ENTITIES + SECRET_ENTITIES + CONTEXT_ENTITIES + NER_ENTITIES
                    + MEDIA_ENTITIES)

_NATIONAL_IDS = ["US_SSN", "UK_NINO", "SE_PERSONNUMMER", "DE_TAX_ID", "FR_INSEE", "NL_BSN", "ES_DNI", "IT_FISCAL_CODE"]

PRESETS: dict[str, list[str]] = {
    # Personal data (GDPR Art. 4(1)): anything that identifies a natural person.
    "pii": [
        "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "DATE_OF_BIRTH", "IP_ADDRESS",
        "CREDIT_CARD", "IBAN_CODE", "DRIVER_LICENSE", "GPS_POSITION", *_NATIONAL_IDS,
    ],
    # Health records: the identifiers HIPAA's Safe Harbor lists that we can detect.
    "phi": [
        "PERSON", "DATE_OF_BIRTH", "STREET_ADDRESS", "PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS",
        "LOCATION", "DRIVER_LICENSE", "GPS_POSITION", *_NATIONAL_IDS,
    ],
    # Credentials: leaked once, they must be rotated.
    "secrets": ["SECRET", "URL_CREDENTIALS"],
    # Customer records: who the customer is and how they pay.
    "customer": [
        "PERSON", "ORGANIZATION", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "CREDIT_CARD", "IBAN_CODE",
    ],
    # Off unless a config names them (frequent in ordinary requests; see docs/privacy.md):
    "urls": ["URL"],  # every web address, not only those with credentials
    "dates": ["DATE_TIME"],  # every date and time (HIPAA counts all dates tied to a patient)
    "affiliations": ["NRP"],  # nationality, religion, political group (GDPR Art. 9 when about a person)
}
# The classes a config without `classes:` gets.
DEFAULT_CLASSES = ("pii", "phi", "secrets", "customer")

DEFAULT_PHONE_REGIONS = ["US", "GB", "DE", "FR", "SE", "NL", "ES", "IT", "IN", "AU", "CA", "BR"]

_ENTITY_NAME = regex.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_CLASS_NAME = regex.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataClassConfig(_Strict):
    detectors: list[str] | None = Field(
        None, description="entity names that make up this class; omitted for a preset (pii, phi, secrets, "
        "customer): the preset's list")


class NerConfig(_Strict):
    enabled: bool | Literal["auto"] = Field(
        "auto", description="names, organisations and places by Presidio + spaCy (extra `privacy-ner`): "
        "true = required (a clear error when the extra is missing), auto = when installed, false = never")
    model: str = Field("en_core_web_sm", description="spaCy pipeline name")
    min_score: float = Field(0.5, ge=0, le=1, description="lowest NER score kept; every spaCy finding scores 0.7, "
                             "so above 0.7 the model's findings are dropped (the heuristics stay)")
    heuristics: bool = Field(True, description="also find names by titles (Mr, Dr, ...), name cues and "
                             "known first names, and organisations by legal suffixes (Ltd, GmbH, ...)")
    max_chars: int = Field(200_000, ge=1000, description="longest text NER will scan in one call; above it "
                           "the scan fails (closed) rather than skip text")


class UserConfig(_Strict):
    dictionaries: dict[str, list[str]] = Field(
        default_factory=dict, description="entity name -> words or phrases (matched case-insensitively on "
        "word boundaries)")
    patterns: dict[str, list[str]] = Field(
        default_factory=dict, description="entity name -> regular expressions (Python `regex` syntax; run "
        "with a timeout)")

    @field_validator("dictionaries", "patterns")
    @classmethod
    def _names(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, items in v.items():
            if not _ENTITY_NAME.match(name):
                raise ValueError(f"entity name {name!r} must be UPPER_SNAKE_CASE (A-Z, 0-9, _), at most 40 chars")
            if not items:
                raise ValueError(f"{name}: give at least one entry")
            if len(items) > 100_000:
                raise ValueError(f"{name}: at most 100,000 entries")
        return v

    @field_validator("patterns")
    @classmethod
    def _compile(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, pats in v.items():
            for i, p in enumerate(pats):
                try:
                    rx = regex.compile(p)
                except regex.error as e:
                    raise ValueError(f"{name}[{i}]: not a valid regular expression ({e})") from None
                if rx.search("", timeout=0.05) is not None:
                    raise ValueError(f"{name}[{i}]: matches the empty string")
        return v

    def entities(self) -> set[str]:
        return set(self.dictionaries) | set(self.patterns)


class DetectionConfig(_Strict):
    classes: dict[str, DataClassConfig] = Field(
        default_factory=lambda: {name: DataClassConfig() for name in DEFAULT_CLASSES},
        description="data classes, each a set of detectors (entity names)")
    phone_regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PHONE_REGIONS),
        description="regions (ISO 3166 alpha-2) whose national phone formats are recognised without a +country "
        "prefix, tried in order; numbers with +country are recognised for every region")
    ner: NerConfig = Field(default_factory=NerConfig)
    user: UserConfig = Field(default_factory=UserConfig)
    entropy_min_bits: float = Field(
        3.7, ge=2.5, le=6.0, description="Shannon entropy (bits per character) above which a long token of "
        "mixed letters and digits counts as a SECRET")
    max_chars: int = Field(4_000_000, ge=10_000, description="longest text one scan accepts; above it the "
                           "scan fails (closed)")
    max_request_chars: int = Field(4_000_000, ge=10_000, description="characters of text one request may carry "
                                   "to a remote model, all its texts together (each is scanned: about 1-7 s of "
                                   "CPU per million); a request with more is refused for remote models (403, a "
                                   "route moves on to a local one)")
    regex_timeout_s: float = Field(0.25, gt=0, le=10, description="time limit for each user pattern per text")

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, v: list[str]) -> list[str]:
        out = []
        for r in v:
            r2 = r.upper()
            if r2 not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown phone region {r!r} (use ISO 3166 alpha-2 codes such as SE, DE, GB)")
            out.append(r2)
        return out

    @model_validator(mode="after")
    def _known_detectors(self) -> DetectionConfig:
        known = set(BUILTIN_ENTITIES) | self.user.entities()
        for name, cls in self.classes.items():
            if not _CLASS_NAME.match(name):
                raise ValueError(f"classes.{name}: class names are lower-case letters, digits, - and _")
            if cls.detectors is None:
                if name not in PRESETS:
                    raise ValueError(f"classes.{name}.detectors: required (only {', '.join(PRESETS)} have presets)")
                continue
            unknown = [d for d in cls.detectors if d not in known]
            if unknown:
                raise ValueError(
                    f"classes.{name}.detectors: unknown {', '.join(_near(d, known) for d in unknown)}; built-in are "
                    f"{', '.join(BUILTIN_ENTITIES)}, or define your own under user.dictionaries / user.patterns")
        return self

    def class_entities(self) -> dict[str, frozenset[str]]:
        """Each data class's entity names (presets resolved)."""
        return {
            name: frozenset(cls.detectors if cls.detectors is not None else PRESETS[name])
            for name, cls in self.classes.items()
        }

    def entities(self) -> frozenset[str]:
        """Every entity some class needs: the detector runs only these."""
        out: set[str] = set()
        for ents in self.class_entities().values():
            out |= ents
        return frozenset(out)

    def needs_ner_model(self) -> bool:
        """Whether the spaCy model is to be loaded: NER not switched off and some class names a person, an
        organisation, a place or a group (a `secrets`-only or pattern-only section never loads it)."""
        return self.ner.enabled is not False and bool(self.entities() & frozenset(NER_ENTITIES))


def _near(name: str, known: set[str]) -> str:
    """`EMAIL` (did you mean `EMAIL_ADDRESS`?): a prefix, else the closest spelling."""
    import difflib

    near = sorted(k for k in known if k.startswith(name.upper() + "_")) or \
        difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
    return f"`{name}`" + (f" (did you mean `{near[0]}`?)" if near else "")
