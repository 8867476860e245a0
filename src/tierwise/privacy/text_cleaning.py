"""Protected values out of text for the ledger and logs (irreversible `<ENTITY>`), and the detector
that finds them, built from the `privacy:` config alone.

`Cleaning` is what `audit.seal_record` needs of a boundary (`clean_text`, `clean_value`); the
gateway's `Boundary` has it, and `LedgerCleaner` is the same cleaning without the rest of a
boundary (no mapping store, no upstreams): for commands that write the ledger without a running
gateway, such as `tierwise feedback`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from tierwise.privacy.policy import PolicyTable
from tierwise.privacy.policy_config import PrivacyConfig


def mark_findings(text: str, found: Any, tally: Counter[str] | None = None) -> str:
    """`text` with each finding replaced by an `<ENTITY>` marker (of overlapping findings, the earliest and then
    the longest wins); `tally` counts the markers written, by entity."""
    out, pos = [], 0
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if f.start < pos:
            continue
        out.append(text[pos:f.start])
        out.append(f"<{f.entity}>")
        if tally is not None:
            tally[f.entity] += 1
        pos = f.end
    out.append(text[pos:])
    return "".join(out)

class DetectionFailed(Exception):
    """`unreadable`: the detector's reason for the client, when its request holds what the scan cannot read."""

    def __init__(self, what: str, unreadable: str | None = None) -> None:
        super().__init__(what)
        self.unreadable = unreadable


DETECTION_FAILED = "[withheld: privacy detector failed]"  # what a text reads when the detector failed on it
NAMES_MEMO = 4096  # distinct client-chosen names whose cleaned form is kept (`clean_name`)


def detector_for(cfg: PrivacyConfig, *, ner: bool = True) -> Callable[[str], list[Any]]:
    """`text -> findings` from tierwise.privacy.detect; any failure inside raises DetectionFailed.
    `ner=False`: the structured detectors only (for split values' junctions)."""
    from tierwise.privacy.detect import Detector

    if not ner:
        cfg = cfg.model_copy(update={"ner": cfg.ner.model_copy(update={"enabled": False})})
    det = Detector(cfg)

    def scan(text: str) -> list[Any]:
        try:
            return det.scan(text)
        except Exception as e:  # DetectorError or anything else: fail closed
            raise DetectionFailed(type(e).__name__, getattr(e, "unreadable", None)) from None

    def scan_many(texts: list[str]) -> list[list[Any]]:
        try:
            return det.scan_many(texts)
        except Exception as e:
            raise DetectionFailed(type(e).__name__, getattr(e, "unreadable", None)) from None

    scan.ner_active = det.ner is not None  # type: ignore[attr-defined]  # NER layer (model or heuristics) on
    if det.ner_active:  # a request's new texts at once (findings_cache.prefill): only spaCy gains from a batch
        scan.scan_many = scan_many  # type: ignore[attr-defined]
    return scan


class Cleaning:
    """Needs `scan` (text -> findings) and `protected` (the entities never stored raw); `own_names` are the
    gateway's own names (routes, models, upstream model ids), which `clean_name` keeps as they are."""

    scan: Callable[[str], list[Any]]
    protected: frozenset[str]
    own_names: frozenset[str] = frozenset()
    _names: dict[str, str] | None = None  # `clean_name`'s memo, made on first use

    def clean_text(self, text: str | None) -> str | None:
        """`text` with every protected value replaced by `<ENTITY>` (irreversible), for the ledger and logs.
        When detection fails, nothing of the text is kept."""
        if not text:
            return text
        try:
            found = [f for f in self.scan(text) if f.entity in self.protected]
        except DetectionFailed:
            return DETECTION_FAILED
        return mark_findings(text, found) if found else text

    def clean_name(self, name: str | None) -> str | None:
        """A name a client chose (the model it asked for, its feature tag), cleaned as its text is, unless it is
        one of the gateway's own names (those come from the config: a detector's guess on `claude-...` is not
        a person). Names recur request after request: each distinct one is scanned once (`NAMES_MEMO` kept)."""
        if not name or name in self.own_names:
            return name
        memo = self._names
        if memo is None:
            memo = self._names = {}
        out = memo.get(name)
        if out is None:
            try:
                found = [f for f in self.scan(name) if f.entity in self.protected]
            except DetectionFailed:
                return DETECTION_FAILED  # not remembered: the next scan may work
            out = mark_findings(name, found) if found else name
            if len(memo) >= NAMES_MEMO:
                memo.clear()
            memo[name] = out
        return out

    def clean_value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.clean_text(v)
        if isinstance(v, dict):
            return {k: self.clean_value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.clean_value(x) for x in v]
        return v


class LedgerCleaner(Cleaning):
    """The configured cleaning of ledger text, without a gateway (see the module's docstring)."""

    def __init__(self, cfg: PrivacyConfig) -> None:
        self.scan = detector_for(cfg)
        self.protected = PolicyTable(cfg).protected_entities()
