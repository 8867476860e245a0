"""The flywheel: turn the loop's evidence into training data, and point at what is worth fine-tuning.

`export` writes three JSONL files from the judged evaluations in the ledger (their text is there only
when the config sets `ledger.store_text`) and from a `learned` route's shadow pairs its `validation` judge
graded (their prompt and both answers are kept without it):
- `sft.jsonl`: accepted local answers in chat format, `{"messages": [{"role": "user", ...},
  {"role": "assistant", ...}], "task_type": ...}` (what chat-format SFT readers load);
- `dpo.jsonl`: preference pairs `{"prompt", "chosen", "rejected"}` where the judge rejected the local
  answer to a request the frontier also answered (the frontier's answer is the chosen one);
- `judge.jsonl`: judge-training triples `{"input", "output", "verdict", "reason", "task_type"}`.
Before anything is written, secrets are scrubbed, and personal data is replaced by `<ENTITY>` markers
when the privacy detector (`tierwise.privacy.detect`) is installed — the detector's default classes and
the config's `privacy` section's own (its words and patterns); `manifest.json` says which.

`candidates` flags task types with at least `min_poor` poor verdicts sharing a failure mode (the judge's
reasons clustered by TF-IDF cosine) as fine-tuning (LoRA) candidates, with examples. Nothing is trained
or promoted here: these are files and a list for a person to decide on.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tierwise.learning.evidence import Verdict, verdicts
from tierwise.secret_scrub import scrub_value

MAX_EXAMPLES = 5
# Poor verdicts of one task type clustered at most (its latest): average linkage holds every pair's distance and a
# dense TF-IDF row per reason, so 8,000 took 137 s and 951 MiB and a month of a busy type's verdicts (or of one
# client's rejected answers) did not finish; 2,000 take ~6 s and ~260 MiB.
MAX_CLUSTERED = 2_000


def pii_redactor(privacy: Any = None, tally: Counter[str] | None = None) -> tuple[Callable[[str], str] | None, str]:
    """A function that replaces detected personal data, or None with the reason it is unavailable. With the
    config's `privacy` section, its own data classes, words and patterns are replaced too (on top of the
    detector's default classes: an export never keeps more than one without that section). `tally` counts
    what was replaced, by entity."""
    try:
        from tierwise.privacy.detect import Detector  # type: ignore[import-not-found,unused-ignore]
        from tierwise.privacy.detect_config import DetectionConfig  # type: ignore[import-not-found,unused-ignore]
        from tierwise.privacy.text_cleaning import mark_findings
    except ImportError:
        return None, "no personal-data detector in this install (tierwise.privacy.detect); secrets only"
    cfg = DetectionConfig()
    if privacy is not None:
        fields = {k: getattr(privacy, k) for k in DetectionConfig.model_fields if hasattr(privacy, k)}
        cfg = DetectionConfig.model_validate({**fields, "classes": {**cfg.classes, **fields.get("classes", {})}})
    detector = Detector(cfg)

    def redact(text: str) -> str:
        return mark_findings(text, detector.scan(text), tally)

    return redact, (f"personal data replaced by <ENTITY> markers (tierwise.privacy.detect; classes "
                    f"{', '.join(sorted(cfg.classes))})")


def _cleaner(redact_pii: bool, privacy: Any = None,
             tally: Counter[str] | None = None) -> tuple[Callable[[str], str], str]:
    pii, note = (pii_redactor(privacy, tally) if redact_pii
                 else (None, "personal-data redaction turned off (--no-redact)"))

    def clean(text: str) -> str:
        t = str(scrub_value(text))
        return pii(t) if pii is not None else t

    return clean, note


def export(ledger: Any, out_dir: str | Path, *, route: str | None = None, redact_pii: bool = True,
           privacy: Any = None) -> dict[str, Any]:
    """`privacy`: the config's `privacy` section (its classes, words and patterns are redacted too)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    replaced: Counter[str] = Counter()
    clean, note = _cleaner(redact_pii, privacy, replaced)
    counts = {"sft": 0, "dpo": 0, "judge": 0, "skipped_without_text": 0, "skipped_without_verdict": 0,
              "dpo_skipped_same_answer": 0}
    with (out / "sft.jsonl").open("w", encoding="utf-8") as sft, (out / "dpo.jsonl").open("w", encoding="utf-8") as dpo, \
            (out / "judge.jsonl").open("w", encoding="utf-8") as judge:
        for v in verdicts(ledger, route=route):
            if not v.prompt or v.local_answer is None:
                counts["skipped_without_text"] += 1
                continue
            if v.grade is None:  # the judge's reply named no grade: nothing to learn from
                counts["skipped_without_verdict"] += 1
                continue
            prompt, local = clean(v.prompt), clean(v.local_answer)
            if v.accepted:
                _line(sft, {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": local}],
                            "task_type": v.task_type, "request_id": v.request_id})
                counts["sft"] += 1
            elif v.frontier_answer and _differ(chosen := clean(v.frontier_answer), local, counts):
                _line(dpo, {"prompt": prompt, "chosen": chosen, "rejected": local,
                            "task_type": v.task_type, "request_id": v.request_id})
                counts["dpo"] += 1
            _line(judge, {"input": prompt, "output": local, "verdict": v.grade, "reason": clean(v.reason),
                          "task_type": v.task_type, "request_id": v.request_id})
            counts["judge"] += 1
        counts["from_shadow_pairs"] = 0
        for pair in judged_shadow_pairs(ledger, route=route):
            prompt, local, frontier = clean(pair["prompt"]), clean(pair["local"]), clean(pair["frontier"])
            lo, fo = pair["local_outcome"], pair["frontier_outcome"]
            ids = {"task_type": pair["task_type"], "request_id": pair["request_id"]}
            if lo >= 0.5:  # good or acceptable: accepted, as the reflective loop counts it
                _line(sft, {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": local}],
                            **ids})
                counts["sft"] += 1
            if lo != fo and _differ(frontier, local, counts):  # the judge preferred one tier's answer
                chosen, rejected = (frontier, local) if fo > lo else (local, frontier)
                _line(dpo, {"prompt": prompt, "chosen": chosen, "rejected": rejected, **ids})
                counts["dpo"] += 1
            _line(judge, {"input": prompt, "output": local, "verdict": _grade(lo), "reason": "", **ids})
            counts["judge"] += 1
            counts["from_shadow_pairs"] += 1
    manifest = {"files": {"sft.jsonl": "chat-format SFT (messages)", "dpo.jsonl": "prompt/chosen/rejected pairs",
                          "judge.jsonl": "judge-training triples (input, output, verdict)"},
                "counts": counts, "redaction": note, "replaced": dict(replaced.most_common()), "route": route}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _differ(chosen: str, rejected: str, counts: dict[str, int]) -> bool:
    """Whether a preference pair's two answers differ (whitespace aside). Two tiers can write the same answer (a short
    fact, a refusal) and the judge still grade them apart; such a pair teaches a preference trainer nothing but the
    judge's noise, so it is counted (`dpo_skipped_same_answer`), not written."""
    if " ".join(chosen.split()) != " ".join(rejected.split()):
        return True
    counts["dpo_skipped_same_answer"] += 1
    return False


def judged_shadow_pairs(ledger: Any, *, route: str | None = None) -> Iterable[dict[str, Any]]:
    """A `learned` route's shadow pairs whose two answers its `validation` judge graded (1 good, 0.5 acceptable,
    0 poor): the prompt, both answers and both grades. A pair whose call failed, or without both grades and
    answers, is left out."""
    for rec in ledger.scan(kind="shadow", route=route):
        sh = rec.shadow or {}
        weak, strong = sh.get("weak"), sh.get("strong")
        if not isinstance(weak, dict) or not isinstance(strong, dict) or not sh.get("prompt"):
            continue
        if weak.get("ok") is False or strong.get("ok") is False:
            continue
        lo, fo = _outcome(weak.get("outcome")), _outcome(strong.get("outcome"))
        if lo is None or fo is None:
            continue
        if not isinstance(weak.get("answer"), str) or not isinstance(strong.get("answer"), str) \
                or not weak["answer"] or not strong["answer"]:
            continue
        yield {"request_id": str(sh.get("of") or rec.request_id), "task_type": str((rec.extra or {}).get("task_type")
               or ""), "prompt": str(sh["prompt"]), "local": weak["answer"], "frontier": strong["answer"],
               "local_outcome": lo, "frontier_outcome": fo}


def _outcome(x: Any) -> float | None:
    """A judged outcome as the ledger holds it (a number from 0 to 1), or None for anything else."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not 0.0 <= x <= 1.0:
        return None
    return float(x)


def _grade(outcome: float) -> str:
    return "good" if outcome >= 0.75 else "acceptable" if outcome >= 0.25 else "poor"


def _line(fh: Any, obj: dict[str, Any]) -> None:
    fh.write(json.dumps(obj, ensure_ascii=False) + "\n")


def failure_modes(poor: list[Verdict], *, min_size: int = 3, distance: float = 0.8) -> list[list[Verdict]]:
    """Groups of poor verdicts whose judge reasons say the same thing (agglomerative, cosine on TF-IDF)."""
    if len(poor) < min_size:
        return []
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [v.reason or "" for v in poor]
    try:
        x = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts).toarray()
    except ValueError:  # no usable words in any reason
        return []
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine",
                                     linkage="average").fit_predict(x)
    groups: dict[int, list[Verdict]] = {}
    for v, lab in zip(poor, labels, strict=True):
        groups.setdefault(int(lab), []).append(v)
    return sorted((g for g in groups.values() if len(g) >= min_size), key=len, reverse=True)


def _label(group: Iterable[Verdict]) -> str:
    from collections import Counter

    words = Counter(w for v in group for w in {w.strip(".,;:!?()\"'").lower() for w in v.reason.split()}
                    if len(w) > 3)
    return ", ".join(w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:4])


def candidates(ledger: Any, *, route: str | None = None, min_poor: int = 3) -> list[dict[str, Any]]:
    by_type: dict[str, list[Verdict]] = {}
    for v in verdicts(ledger, route=route):
        if v.grade == "poor":
            by_type.setdefault(v.task_type, []).append(v)
    out = []
    for task_type, poor in sorted(by_type.items()):
        latest = sorted(poor, key=lambda v: v.ts)[-MAX_CLUSTERED:]
        for group in failure_modes(latest, min_size=min_poor):
            out.append({"task_type": task_type, "poor_verdicts": len(group), "failure_mode": _label(group),
                        "of_latest": len(latest), "poor_total": len(poor),
                        "examples": [{"request_id": v.request_id, "reason": v.reason[:300]}
                                     for v in group[:MAX_EXAMPLES]],
                        "suggestion": f"fine-tune (LoRA) the local model on {task_type}: export with "
                                      "`tierwise flywheel export` and review before training"})
    return out
