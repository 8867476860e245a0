"""Phone numbers without a phone word, written to pass for round 11's "no phone" shapes (session 31, review31d).

The annotated sentences (`bench/privacy_evasion.py`) hold a phone word beside most numbers ("call", "phone"), which
switches round 11's amount/range/ratio rules off. Here every gold PHONE_NUMBER value of
`pii-presidio-synth/synth_dataset_v2.json` stands in a frame without one (`Jane Doe, <value>, 12 Main St`), as written
and in each shape; the figure is the share found as PHONE_NUMBER (detector: structured layer, NER off).

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data nice -n 5 .venv/bin/python bench/privacy_phone_frames.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

SHAPES = {
    "as written": lambda v: v,
    "after `$`": lambda v: "$" + v,
    "after `€`": lambda v: "\u20ac" + v,
    "after `$ `": lambda v: "$ " + v,
    "a range's dash after four digits": lambda v: _digits(v)[:4] + "-" + _digits(v)[4:],
    "a ratio's slash after four digits": lambda v: _digits(v)[:4] + "/" + _digits(v)[4:],
}


def _digits(v: str) -> str:
    return "".join(c for c in v if c.isdigit())


def main() -> None:
    root = Path(os.environ.get("TIERWISE_DATA", "../shared/data"))
    rows = json.loads((root / "pii-presidio-synth" / "synth_dataset_v2.json").read_text())
    values = sorted({r["full_text"][s["start_position"]:s["end_position"]] for r in rows for s in r["spans"]
                     if s["entity_type"] == "PHONE_NUMBER"})
    det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}},
                                                   "ner": {"enabled": False}}))
    print(f"{len(values)} distinct phone values")
    for name, fn in SHAPES.items():
        hit = 0
        for v in values:
            text = f"Jane Doe, {fn(v)}, 12 Main St"
            hit += any(f.entity == "PHONE_NUMBER" for f in det.scan(text))
        print(f"| {name} | {hit}/{len(values)} | {hit / len(values):.2f} |")


if __name__ == "__main__":
    main()
