"""CPU time of `Detector.scan` (pii + secrets, NER off) over the presidio synth sentences (dense with cards,
IBANs, phones and addresses) in pieces of 8,000 characters: an A/B of a detector change, one tree per run.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/privacy_scan_cost.py
    PYTHONPATH=/other/tree/src OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/privacy_scan_cost.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig


def main() -> None:
    data = Path(os.environ.get("TIERWISE_DATA", "/work/shared/data")) / "pii-presidio-synth" / "synth_dataset_v2.json"
    text = "\n".join(r["full_text"] for r in json.loads(data.read_text()))
    chunks = [text[i:i + 8000] for i in range(0, len(text), 8000)]
    det = Detector(DetectionConfig.model_validate({"classes": {"pii": {}, "secrets": {}}, "ner": {"enabled": False}}))
    for c in chunks[:5]:
        det.scan(c)
    runs = []
    for _ in range(5):
        t = time.process_time()
        for c in chunks:
            det.scan(c)
        runs.append((time.process_time() - t) / len(chunks) * 1e6)
    runs.sort()
    print(f"{len(chunks)} pieces of 8,000 characters: {runs[0]:.0f} µs per piece (min of 5), median {runs[2]:.0f}")


if __name__ == "__main__":
    main()
