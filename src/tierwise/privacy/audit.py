"""The audit of the privacy boundary: what the ledger keeps about each crossing, and how it is read.

Writing. Every remote call the boundary handled left a `decision` step named `privacy` on the
trace (tierwise.privacy.boundary). `seal_record` runs in `Ledger.submit` (only when a
`privacy:` section is configured) on every record -- requests, shadow pairs, ensemble runs:

- it copies those steps' `detail.privacy` into the record's `privacy` column: one entry per
  crossing with destination (`to`, `provider`, `regions`), `action` (sent, redacted,
  refused, blocked), `classes` and `entities` (counts), `redacted` and `kept` (counts by
  entity), `sha256` and `bytes` of the outgoing body, `leak_check` (how many detected values
  were searched for in those bytes, and how many were found: a found one refused the call),
  and with `audit.store_payload` the outgoing (already redacted) body;
- it replaces every value of a protected class in the record's free text -- prompt and
  answer (`ledger.store_text`), shadow pairs, error messages, reasons, step details -- with
  `<ENTITY>` (irreversible); so is the client's feature tag and the model name it asked for (`clean_name`:
  the gateway's own names stay). When detection fails there, the text is withheld; when cleaning
  itself fails (anything else raising), so is every free-text field -- `extra`'s strings too (a
  feedback reason, an approval's reason, an ensemble's artifact), keeping its structure, numbers
  and the gateway's own words (`withheld`).

Reading. `report(rows, by)` groups crossings by route, class, destination, action or day;
`prove(record, rescan)` re-checks one request (see its docstring for what that proves).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from tierwise.ledger.records import LedgerRecord

log = logging.getLogger("tierwise.privacy")

_TEXT_FIELDS = ("prompt", "answer", "error_message", "reason", "shadow", "extra")
_NAME_FIELDS = ("feature", "requested_model")  # names a client chose: its text too


def crossings_of(steps: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in steps:
        if s.get("kind") == "decision" and s.get("name") == "privacy":
            d = (s.get("detail") or {}).get("privacy")
            if isinstance(d, dict):
                out.append(d)
    return out


def seal_record(boundary: Any, rec: LedgerRecord) -> None:
    """Crossings into `rec.privacy`; protected values out of its text. Never raises."""
    try:
        crossings: list[dict[str, Any]] = []
        for s in rec.steps:
            if s.get("kind") == "decision" and s.get("name") == "privacy":
                d = (s.get("detail") or {}).get("privacy")
                if isinstance(d, dict):
                    crossings.append(d)
                    # The (redacted) payload lives in the privacy column only; the step keeps the rest.
                    s["detail"] = {"privacy": {k: v for k, v in d.items() if k != "payload"}}
                continue
            if s.get("reason"):
                s["reason"] = boundary.clean_text(s["reason"])
            if s.get("detail"):
                s["detail"] = boundary.clean_value(s["detail"])
        if crossings:
            rec.privacy = crossings
        for f in _TEXT_FIELDS:
            v = getattr(rec, f)
            if v:
                setattr(rec, f, boundary.clean_value(v))
        for f in _NAME_FIELDS:
            v = getattr(rec, f)
            if v:
                setattr(rec, f, boundary.clean_name(v))
    except Exception as e:  # the ledger must never break a request; keep no text rather than raw text
        log.error("privacy: could not clean ledger record %s (%s); its text is withheld", rec.request_id,
                  type(e).__name__)
        rec.prompt = rec.answer = rec.shadow = None
        rec.error_message = WITHHELD if rec.error_message else None
        rec.reason = WITHHELD if rec.reason else ""
        own: frozenset[str] = getattr(boundary, "own_names", frozenset())
        for f in _NAME_FIELDS:
            if getattr(rec, f) and getattr(rec, f) not in own:
                setattr(rec, f, WITHHELD)
        try:
            rec.extra = withheld(rec.extra) if rec.extra else rec.extra
        except Exception:  # e.g. nested past the recursion limit: nothing of it is kept
            rec.extra = {}
        rec.steps = [{k: v for k, v in s.items() if k not in ("reason", "detail")} for s in rec.steps]


WITHHELD = "[withheld]"
# Keys of `extra` whose strings the gateway writes from its config or its own vocabulary, never a
# client's or a person's text: kept when the rest is withheld (feedback's owner check reads `key`).
_OWN_WORDS = frozenset({"key", "task_type", "complexity", "rating", "source", "state", "ensemble", "run_id"})


def withheld(v: Any, key: str | None = None) -> Any:
    """`v` with every string replaced by `[withheld]`, except under the gateway's own keys; numbers and
    the structure stay (a feedback's rating and time, an approval's wait)."""
    if isinstance(v, str):
        return v if key in _OWN_WORDS else WITHHELD
    if isinstance(v, dict):
        return {k: withheld(x, k) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [withheld(x, key) for x in v]
    return v


# ---------------------------------------------------------------------------- reading

GROUPS = ("route", "class", "destination", "action", "day")


def _keys(by: str, rec: LedgerRecord, c: dict[str, Any]) -> list[str]:
    if by == "route":
        return [rec.route]
    if by == "destination":
        return [str(c.get("to"))]
    if by == "action":
        return [str(c.get("action"))]
    if by == "day":
        return [time.strftime("%Y-%m-%d", time.gmtime(rec.ts))]
    return list((c.get("classes") or {}).keys()) or ["(none)"]


def report(records: Iterable[LedgerRecord], by: str) -> list[dict[str, Any]]:
    """One row per group: crossings, requests, values detected / redacted / kept, sent / redacted /
    refused / blocked crossings, bytes sent."""
    rows: dict[str, dict[str, Any]] = {}
    for rec in records:
        seen: set[str] = set()
        for c in rec.privacy or []:
            for k in _keys(by, rec, c):
                r = rows.setdefault(k, {by: k, "crossings": 0, "requests": 0, "detected": 0, "redacted": 0,
                                        "kept": 0, "sent": 0, "refused": 0, "blocked": 0, "bytes_out": 0})
                if k not in seen:
                    seen.add(k)
                    r["requests"] += 1
                r["crossings"] += 1
                r["detected"] += sum((c.get("entities") or {}).values())
                r["redacted"] += sum((c.get("redacted") or {}).values())
                r["kept"] += sum((c.get("kept") or {}).values())
                action = c.get("action")
                if action in ("sent", "redacted"):
                    r["sent"] += 1
                    r["bytes_out"] += int(c.get("bytes") or 0)
                elif action in ("refused", "blocked"):
                    r[action] += 1
    return sorted(rows.values(), key=lambda r: str(r[by]))


def prove(rec: LedgerRecord, rescan: Callable[[str], list[Any]] | None = None,
          protected: frozenset[str] = frozenset()) -> tuple[bool, list[str]]:
    """Re-check, for one request, that no detected value of a class the policy protects left.

    What it checks, per crossing that was sent (from the ledger alone):
    1. the leak check ran on the exact outgoing bytes (`sha256`, `bytes` recorded) and found none
       of the detected values in them;
    2. with a stored payload (`privacy.audit.store_payload`): the payload still hashes to the
       recorded SHA-256 (it is what was sent), and a fresh scan of it with `rescan` (today's
       detector) finds no value of a protected entity (`protected`). Placeholders are not values.
    `kept` counts are values of classes the route's policy allows to be sent as they are.
    Refused and blocked crossings sent nothing. What this cannot prove: that the detector found
    everything (a name NER missed was never a "detected value"); without a stored payload, only
    the checks made at send time are on record (the values themselves are never stored).
    """
    lines: list[str] = []
    ok = True
    crossings = rec.privacy or []
    if not crossings:
        lines.append("no remote crossing is recorded for this request (served locally, or privacy was off)")
        return True, lines
    for i, c in enumerate(crossings, 1):
        head = f"crossing {i}: {c.get('action')} -> {c.get('to')} ({c.get('provider')})"
        action = c.get("action")
        if action in ("refused", "blocked"):
            lines.append(f"{head}: nothing sent ({c.get('why', '')})")
            continue
        problems: list[str] = []
        kept = c.get("kept") or {}
        redacted = c.get("redacted") or {}
        leak = c.get("leak_check")
        if leak is None:
            problems.append("no leak check on record (the call did not reach the send step)")
        elif leak.get("found"):
            problems.append(f"leak check found {leak['found']} value(s) in the body")
        payload = c.get("payload")
        note = ""
        if payload is not None:
            if hashlib.sha256(payload.encode()).hexdigest() != c.get("sha256"):
                problems.append("stored payload does not match the recorded SHA-256")
            elif rescan is not None:
                found = [f for f in rescan(payload) if f.entity in protected]
                if found:
                    ents = sorted({f.entity for f in found})
                    problems.append(f"a fresh scan of the payload finds {len(found)} protected value(s): {ents}")
                else:
                    note = "; payload re-hashed and re-scanned: clean"
        if problems:
            ok = False
            lines.append(f"{head}: FAILED: " + "; ".join(problems))
        else:
            searched = leak.get("values", 0) if leak else 0
            lines.append(f"{head}: ok: redacted {sum(redacted.values())} value(s) "
                         f"({', '.join(f'{e}={n}' for e, n in sorted(redacted.items())) or 'none'}), "
                         f"kept as allowed {sum(kept.values())}, {searched} detected value(s) searched for in "
                         f"the {c.get('bytes')}-byte body (sha256 {str(c.get('sha256'))[:16]}...): none found"
                         + note)
    return ok, lines
