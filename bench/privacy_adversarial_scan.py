"""review35f: the detector (every built-in entity, NER off) on adversarial texts: each unit repeated to 25,000 and
200,000 characters, then `!`; CPU seconds and their ratio (8 when linear: catastrophic backtracking shows as a ratio
far above 8).

    PYTHONPATH=src .venv/bin/python bench/privacy_adversarial_scan.py
"""

import time

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

UNITS = ["a", "A", "1", " ", "a1", "a.", "a@", "a-", "1 ", "1-", "aA", "a_", "1.", "a ", "A ", "a.b@", "1/", "a:", "a/",
         ":1", "1,", "a\n", "=a", "aa ", "Aa", "A1", "+1", "ab.", "a=", "1a", "%a", "\\a", "a'", "(1", "1)", ".1", "0x",
         "1:", "-a", "a+", " a", "  1", "a@b.", "1 1 ", "12 ", "1-2-", "key=", "pass ", "x" * 30 + "A1+", "Ab1", "aB1+",
         "@@", "..", "--", "__", "a\t", "4111 ", "DE89", "://a", "www.", "192.168.", "::1:", "0:0:", "+46 ", "(0)",
         "§", "é", "\u00a0a"]


def main() -> None:
    det = Detector(DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}, "max_chars": 10_000_000}))
    for u in UNITS:
        ts = []
        for n in (25_000, 200_000):
            s = (u * (n // len(u) + 1))[:n] + "!"
            t0 = time.process_time()
            det.scan(s)
            ts.append(time.process_time() - t0)
        print(f"{u!r:20s} 25k={ts[0]:.3f}s 200k={ts[1]:.3f}s ratio={ts[1] / max(ts[0], 1e-3):.1f}", flush=True)


if __name__ == "__main__":
    main()
