"""How often the privacy detector finds a value in an LLM judge's prompt that holds none but its fence tag (session 33,
flakes33). The prompt fences the request and the answer with a tag drawn per call; a tag the detector reads as a
phone or card number made a boundary under `pii: local_only` refuse the judge's call.

    PYTHONPATH=src .venv/bin/python bench/judge_tag_scan.py --calls 20000 --tag hex
    PYTHONPATH=src .venv/bin/python bench/judge_tag_scan.py --calls 20000 --tag current

`hex` draws tags as before (12 hex digits); `current` uses the judge's own `_fence_tag`. Classes: every built-in
preset (pii, phi, secrets, customer, urls, dates, affiliations), NER off (the suite's setting); the request and the
answer are those of tests/security/test_loop_privacy.py.
"""

from __future__ import annotations

import argparse
import collections
import secrets
import time

from tierwise.privacy.detect import Detector
from tierwise.verifiers import judge


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--tag", choices=("hex", "current"), default="current")
    a = ap.parse_args()
    classes: dict[str, dict[str, object]] = {c: {} for c in ("pii", "phi", "secrets", "customer", "urls", "dates",
                                                            "affiliations")}
    det = Detector.from_dict({"ner": {"enabled": False}, "classes": classes})
    request, answer = "What is 2 + 2? (plain)", "local answer"
    hits: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for _ in range(a.calls):
        tag = secrets.token_hex(6) if a.tag == "hex" else judge._fence_tag(request, answer)
        text = judge._PROMPT.format(rubric=judge.DEFAULT_RUBRIC, request=request, answer=answer, tag=tag)
        entities = sorted({f.entity for f in det.scan(text)})
        if entities:
            key = "+".join(entities)
            hits[key] += 1
            examples.setdefault(key, []).append(tag)
    n = sum(hits.values())
    print(f"tag={a.tag} calls={a.calls} prompts with a finding={n} ({100 * n / a.calls:.2f}%) "
          f"by entity={dict(hits)} scan={time.perf_counter() - t0:.1f}s")
    for key, tags in examples.items():
        print(f"  {key}: e.g. {', '.join(tags[:3])}")


if __name__ == "__main__":
    main()
