"""`Detector`: finds sensitive values in text, built from the `privacy` config's detection part.

    d = Detector(DetectionConfig())            # or Detector.from_dict(cfg["privacy"])
    findings = d.scan(text)                    # non-overlapping, sorted by start
    d.classes_of(findings)                     # {"pii": 3, "secrets": 1}

What it runs: only the recognizers whose entities some data class needs (see
`detect_config.PRESETS`). Text is normalised first (zero-width and bidi characters removed,
NFKC, Unicode digits and dashes to ASCII; see `textnorm`), and spans are mapped back to the
original text. Overlaps are resolved by score, then length. Any internal failure (a recognizer
bug, a user pattern's timeout, NER failing, text over the size bound) raises `DetectorError`:
the privacy policy treats that as "sensitive" and fails closed.
"""

from __future__ import annotations

import functools
import inspect
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from tierwise.errors import ConfigError, TierwiseError
from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.digit_views import digit_view_findings
from tierwise.privacy.encoded import encoded85_findings, encoded_findings
from tierwise.privacy.finding import Finding
from tierwise.privacy.ip_forms import ip_form_findings
from tierwise.privacy.layout import LAYOUT_ENTITIES, layout_findings, reversed_findings, underscore_findings
from tierwise.privacy.layout_contact import contact_layout_findings
from tierwise.privacy.markup import markup_findings
from tierwise.privacy.media_text import GPS_POSITION
from tierwise.privacy.packed import PackedCut
from tierwise.privacy.payload_bytes import OPAQUE
from tierwise.privacy.pdf_dates import without_pdf_dates
from tierwise.privacy.pdf_text import UNREADABLE
from tierwise.privacy.recognizers.prescan import Prescan
from tierwise.privacy.spaced import SINGLE_DIGITS, at_gap_findings, not_a_value, spaced_findings
from tierwise.privacy.textnorm import SpanMap, confusables, normalise

# Shortest text worth scanning: the shortest value any recognizer emits is a 3+ character word
# (a user dictionary entry or a name); below it nothing can match.
_MIN_SCAN_LEN = 3


class DetectorError(TierwiseError):
    """Detection failed; the text must be treated as sensitive (fail closed). Never holds values. `unreadable`: why,
    in words for the client, when the cause is in its request (a payload the scan cannot read; round 14)."""

    status = 503
    kind = "api_error"
    unreadable: str | None = None


# What a client is told when its request holds what the scan cannot read (round 14: it read "the privacy detector
# failed", which says nothing a client can act on)
PDF_UNREADABLE = ("it holds a PDF the privacy scan cannot read (broken, encrypted, other data after its end, or past the "
                  "scan's bounds)")
BYTES_UNREADABLE = ("it holds a file whose bytes the privacy scan cannot read (not text in an encoding it reads, a "
                    "PDF, an image or audio, an archive of those: an archive past the scan's bounds (8 MB inflated, 100 times "
                    "its size, 1,000 files, 3 deep) or holding another file, an undeclared charset)")
PACKED_UNREADABLE = ("it holds gzip or zlib data that inflates past the privacy scan's bound (8 times its size + 4 KB; "
                     "a request's in all: its size + 4 KB); send such content uncompressed")


def unreadable(reason: str) -> DetectorError:
    e = DetectorError(f"privacy detector: {reason} (fails closed)")
    e.unreadable = reason
    return e


class Recognizer(Protocol):
    """`find(text)`; the built-in ones also take `find(text, pre)`, the shared `Prescan` of the text."""

    name: str
    entities: frozenset[str]

    def find(self, text: str) -> Iterable[Finding]: ...


@functools.lru_cache(maxsize=256)
def _takes_prescan(cls: type) -> bool:
    try:
        return "pre" in inspect.signature(cls.find).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError, AttributeError):
        return False


def _build_recognizers(cfg: DetectionConfig, wanted: frozenset[str]) -> list[Recognizer]:
    from tierwise.privacy.recognizers.address import AddressRecognizer
    from tierwise.privacy.recognizers.contact import (
        EmailRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlCredentialsRecognizer,
    )
    from tierwise.privacy.recognizers.context import CONTEXT_RECOGNIZERS
    from tierwise.privacy.recognizers.dates import DateTimeRecognizer
    from tierwise.privacy.recognizers.groups import GroupRecognizer
    from tierwise.privacy.recognizers.ids import ID_RECOGNIZERS
    from tierwise.privacy.recognizers.secrets import SecretRecognizer
    from tierwise.privacy.recognizers.user import DictionaryRecognizer, PatternRecognizer
    from tierwise.privacy.recognizers.web import UrlRecognizer

    candidates: list[Recognizer] = [cls() for cls in ID_RECOGNIZERS]
    candidates += [EmailRecognizer(), IpRecognizer(), UrlCredentialsRecognizer(), PhoneRecognizer(cfg.phone_regions)]
    candidates.append(SecretRecognizer(cfg.entropy_min_bits))
    candidates += [cls() for cls in CONTEXT_RECOGNIZERS]
    candidates += [UrlRecognizer(), DateTimeRecognizer(), GroupRecognizer()]
    # City and country lines after a street become LOCATION findings when LOCATION is wanted.
    candidates.append(AddressRecognizer(split_places="LOCATION" in wanted))
    if cfg.user.dictionaries:
        candidates.append(DictionaryRecognizer(cfg.user.dictionaries))
    if cfg.user.patterns:
        candidates.append(PatternRecognizer(cfg.user.patterns, cfg.regex_timeout_s))
    return [r for r in candidates if r.entities & wanted]


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep a non-overlapping subset, best first (score, then length, then earlier); sorted by start."""
    ranked = sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start))
    starts: list[int] = []
    kept: list[Finding] = []  # sorted by start, non-overlapping
    for f in ranked:
        i = bisect_left(starts, f.start)
        if i > 0 and kept[i - 1].end > f.start:
            continue
        if i < len(kept) and kept[i].start < f.end:
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return kept


class Detector:
    """Scans text for the entities of the configured data classes."""

    def __init__(self, config: DetectionConfig | None = None, *, ner: Any = None) -> None:
        self.config = config or DetectionConfig()
        self.class_entities: dict[str, frozenset[str]] = self.config.class_entities()
        self.entities: frozenset[str] = self.config.entities()
        self._entity_classes: dict[str, tuple[str, ...]] = {}
        for cls_name, ents in self.class_entities.items():
            for e in ents:
                self._entity_classes[e] = (*self._entity_classes.get(e, ()), cls_name)
        self.recognizers: list[Recognizer] = _build_recognizers(self.config, self.entities)
        # the layout view keeps cards, IBANs and SSNs only: the recognizers that find them (the first three; none
        # reads what a later one claimed), not the twenty others, over each joined run
        self._layout_recognizers = [r for r in self.recognizers if r.entities & LAYOUT_ENTITIES]
        self.ner = ner if ner is not None else self._build_ner()
        try:  # load the look-alike table now: a missing package is a start-up error, not a refusal per request
            confusables()
        except ImportError as e:
            raise ConfigError("the package confusable-homoglyphs (Unicode's confusables data) is not "
                              f"installed ({e}); install tierwise's dependencies (pip install confusable-homoglyphs)",
                              path="privacy") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Detector:
        return cls(DetectionConfig.model_validate(dict(data or {})))

    def _build_ner(self) -> Any:
        from tierwise.privacy.ner import build_ner

        return build_ner(self.config, self.entities)

    @property
    def ner_active(self) -> bool:
        """Whether the NER model itself is loaded (the heuristics may run without it)."""
        return bool(getattr(self.ner, "model_loaded", self.ner is not None))

    # ------------------------------------------------------------------ scanning

    def scan(self, text: str) -> list[Finding]:
        """Non-overlapping findings sorted by start, spans in `text`'s own offsets."""
        return self._scan(text, None) if self._worth(text) else []

    def scan_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """`scan(t)` for each text, NER over all of them in batched spaCy calls (`ner.find_many`): the same
        findings, without a model call per short text (session 33, privscan33). Raises as `scan` would on
        any of them."""
        many = getattr(self.ner, "find_many", None)
        if many is None:
            return [self.scan(t) for t in texts]
        todo = [i for i, t in enumerate(texts) if self._worth(t)]
        try:
            norms = [normalise(texts[i]) for i in todo]
            ner: list[list[Finding]] = many([n for n, _ in norms])
        except DetectorError:
            raise
        except Exception as e:  # fail closed, as `scan`
            raise DetectorError(f"privacy detector failed ({type(e).__name__}); treating the text as sensitive") from None
        out: list[list[Finding]] = [[] for _ in texts]
        for k, i in enumerate(todo):
            out[i] = self._scan(texts[i], (*norms[k], ner[k]))
        return out

    def _worth(self, text: str) -> bool:
        if text[:1] == "\x00" and text in (UNREADABLE, OPAQUE):
            raise unreadable(PDF_UNREADABLE if text == UNREADABLE else BYTES_UNREADABLE)
        if len(text) < _MIN_SCAN_LEN or text.isspace():
            return False
        if len(text) > self.config.max_chars:
            raise DetectorError(
                f"privacy detector: text of {len(text)} characters is over the {self.config.max_chars} limit"
            )
        return True

    def _scan(self, text: str, done: tuple[str, SpanMap | None, list[Finding]] | None) -> list[Finding]:
        """`done`: the text normalised, its span map and the NER layer's findings in it, when `scan_many` has them."""
        if text == GPS_POSITION:  # a photo's GPS position (privacy/media_text.py): the whole marker is the value
            return [Finding("GPS_POSITION", 0, len(text), 1.0, "media.gps")] if "GPS_POSITION" in self.entities else []
        try:
            norm, spans = normalise(text) if done is None else (done[0], done[1])
            pre = Prescan(norm)  # shared by the recognizers: digit clusters, lower-cased text
            # single digits one space apart in a grid's row (`5 3 0 0 7 0 0 0 0`) are no card or phone number
            found = [f for f in self._structured(norm, pre)
                     if not (SINGLE_DIGITS.fullmatch(norm, f.start, f.end) and not_a_value(norm, f.start, f.end))]
            # `D:20261207140009Z` is no card, nor part of the number after it: privacy/pdf_dates.py
            found = without_pdf_dates(norm, found, lambda blanked: self._structured(blanked, Prescan(blanked)))
            # values written with a space between every character (`5 3 6 - 2 2 - 8 1 4 7`): privacy/spaced.py
            found.extend(spaced_findings(norm, pre, self._joined))
            found.extend(at_gap_findings(norm, self._joined))  # `j o h n @ example.com`, wider gaps
            # values with inline markup inside them (`jane.doe@**example**.com`, `4111<b>1111</b>...`): privacy/markup.py
            found.extend(markup_findings(norm, self._joined))
            # values in base64 or hex (a JWT's payload, a Kubernetes Secret, a MIME body): privacy/encoded.py
            found.extend(encoded_findings(norm, self._decoded))
            # card and IBAN groups across tabs, lines, table cells, emphasis between digits: privacy/layout.py
            found.extend(layout_findings(norm, self._layout_joined))
            found.extend(underscore_findings(norm, self._layout_joined))  # `receipt_4111...png`: privacy/layout.py
            # phone numbers and IPs across tabs, lines, cells after a word for one: privacy/layout_contact.py
            found.extend(contact_layout_findings(norm, self._joined))
            # digits spelled as words (`four one one one ...`) or as look-alike letters (`4lll`, `2O3`): digit_views.py
            found.extend(digit_view_findings(norm, self._joined))
            # IPv4 as `dot` words, spaced dots, hex/octal parts, one number as a URL's host or after `ip`: ip_forms.py
            found.extend(ip_form_findings(norm))
            if self.ner is not None:
                found.extend(self.ner.find(norm) if done is None else done[2])
            found = [f for f in found if f.entity in self.entities]
            kept = resolve_overlaps(found)
            if spans is not None:
                kept = [Finding(f.entity, *spans.span(f.start, f.end), f.score, f.detector) for f in kept]
            late: list[Finding] = []  # views of the text as written, spans in `text`
            if "\u202e" in text:  # right-to-left overrides, read as displayed: privacy/layout.py
                late.extend(reversed_findings(text, self._decoded))
            late.extend(encoded85_findings(text, self._decoded))  # Ascii85 / base85 tokens: privacy/encoded.py
            if spans is not None and ("=\n" in text or "=\r\n" in text):
                # base64 padding before a line break (`...MDA=` + newline + `thanks`): normalisation took it for a
                # quoted-printable soft break and joined the next word to the run, which then decoded to nothing
                late.extend(encoded_findings(text, self._decoded))
            late = [f for f in late if f.entity in self.entities]
            kept = resolve_overlaps(kept + late) if late else kept
            return kept
        except DetectorError:
            raise
        except PackedCut:
            raise unreadable(PACKED_UNREADABLE) from None
        except Exception as e:  # fail closed; the message names the failure, never the text
            raise DetectorError(f"privacy detector failed ({type(e).__name__}); treating the text as sensitive") from None

    def _structured(self, norm: str, pre: Prescan, recognizers: list[Recognizer] | None = None) -> list[Finding]:
        found: list[Finding] = []
        for r in self.recognizers if recognizers is None else recognizers:
            got = list(r.find(norm, pre) if _takes_prescan(type(r)) else r.find(norm))  # type: ignore[call-arg]
            pre.claimed.extend((f.start, f.end, f.score) for f in got)
            found.extend(got)
        return found

    def _joined(self, joined: str) -> list[Finding]:
        """The structured recognizers over a spaced run joined (short: no normalisation left to do)."""
        return self._structured(joined, Prescan(joined))

    def _layout_joined(self, joined: str) -> list[Finding]:
        """The card, IBAN and SSN recognizers over a run privacy/layout.py joined."""
        return self._structured(joined, Prescan(joined), self._layout_recognizers)

    def _decoded(self, text: str) -> list[Finding]:
        """The structured recognizers over decoded base64 / hex, normalised first (its escapes, look-alikes)."""
        norm, spans = normalise(text)
        got = self._structured(norm, Prescan(norm))
        if spans is None:
            return got
        return [Finding(f.entity, *spans.span(f.start, f.end), f.score, f.detector) for f in got]

    def __call__(self, text: str) -> list[Finding]:
        return self.scan(text)

    # ------------------------------------------------------------------ classes

    def classes_for(self, entity: str) -> tuple[str, ...]:
        """The data classes an entity belongs to."""
        return self._entity_classes.get(entity, ())

    def classes_of(self, findings: Iterable[Finding]) -> dict[str, int]:
        """How many findings fall in each data class (a finding counts once in each of its classes)."""
        out: dict[str, int] = {}
        for f in findings:
            for c in self._entity_classes.get(f.entity, ()):
                out[c] = out.get(c, 0) + 1
        return out
